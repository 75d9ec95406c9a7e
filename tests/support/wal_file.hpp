// SQLite's write-ahead log as it lies on disk (https://sqlite.org/fileformat2.html#walformat),
// read and written the way SQLite's recovery reads it, so that a test can leave behind what a
// power cut in the middle of a write would.
//
// A WAL file is a 32-byte header followed by frames. Each frame is a 24-byte header and one
// database page:
//   header: magic (0x377f0682, or 0x377f0683 when checksums take big-endian words), format
//           version, page size, checkpoint sequence, salt-1, salt-2, checksum-1, checksum-2 of the
//           first 24 bytes. Integers are big-endian.
//   frame:  page number, database size in pages after the commit (0 in frames that do not end a
//           transaction), salt-1, salt-2 (the header's, else the frame is left over from before
//           the log was restarted), checksum-1, checksum-2 over the frame header's first 8 bytes
//           and the page, carried on from the previous frame's checksum (or the header's).
// Recovery takes frames from the start while they are whole, carry the header's salts and their
// checksum matches; a transaction counts only once its commit frame (non-zero size) was taken.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>

namespace test {

inline constexpr std::size_t kWalHeaderBytes = 32;
inline constexpr std::size_t kWalFrameHeaderBytes = 24;

inline std::uint32_t big_endian_at(std::string_view bytes, std::size_t offset) {
    std::uint32_t value = 0;
    for (std::size_t i = 0; i < 4; ++i)
        value = (value << 8) | static_cast<unsigned char>(bytes[offset + i]);
    return value;
}

inline void put_big_endian(std::string& bytes, std::size_t offset, std::uint32_t value) {
    for (std::size_t i = 0; i < 4; ++i)
        bytes[offset + i] = static_cast<char>((value >> (8 * (3 - i))) & 0xff);
}

struct WalChecksum {
    std::uint32_t first = 0;
    std::uint32_t second = 0;
    bool operator==(const WalChecksum&) const = default;
};

// SQLite's WAL checksum over `bytes` (a multiple of 8), carried on from `from`.
inline WalChecksum wal_checksum(std::string_view bytes, bool big_endian_words, WalChecksum from) {
    const auto word = [&](std::size_t offset) {
        if (big_endian_words)
            return big_endian_at(bytes, offset);
        std::uint32_t value = 0;
        for (std::size_t i = 4; i-- > 0;)
            value = (value << 8) | static_cast<unsigned char>(bytes[offset + i]);
        return value;
    };
    WalChecksum sum = from;
    for (std::size_t offset = 0; offset + 8 <= bytes.size(); offset += 8) {
        sum.first += word(offset) + sum.second;
        sum.second += word(offset + 4) + sum.first;
    }
    return sum;
}

// What recovery would make of a WAL file.
struct WalLayout {
    std::uint32_t page_size = 0;
    std::uint32_t checkpoint_sequence = 0;
    std::uint32_t salt1 = 0, salt2 = 0;
    bool big_endian_checksums = false;
    std::size_t valid_frames = 0;       // whole, salted and checksummed, from the start
    std::size_t committed_frames = 0;   // up to the last valid commit frame: what counts
    std::size_t valid_bytes = 0;        // header and valid frames
    WalChecksum after_valid;            // the checksum the next frame carries on from
    std::uint32_t database_pages = 0;   // as the last valid commit frame says
    std::uint32_t last_page_number = 0; // of the last valid frame
    std::size_t frame_bytes() const { return kWalFrameHeaderBytes + page_size; }
};

inline WalLayout read_wal_layout(std::string_view wal) {
    if (wal.size() < kWalHeaderBytes)
        throw std::runtime_error("WAL shorter than its header");
    WalLayout layout;
    const std::uint32_t magic = big_endian_at(wal, 0);
    if ((magic & ~1u) != 0x377f0682u)
        throw std::runtime_error("not a WAL file");
    layout.big_endian_checksums = (magic & 1u) != 0;
    layout.page_size = big_endian_at(wal, 8);
    layout.checkpoint_sequence = big_endian_at(wal, 12);
    layout.salt1 = big_endian_at(wal, 16);
    layout.salt2 = big_endian_at(wal, 20);
    const WalChecksum header_sum = wal_checksum(wal.substr(0, 24), layout.big_endian_checksums, {});
    if (header_sum != WalChecksum{big_endian_at(wal, 24), big_endian_at(wal, 28)})
        throw std::runtime_error("WAL header checksum does not match");
    layout.after_valid = header_sum;
    layout.valid_bytes = kWalHeaderBytes;
    for (std::size_t offset = kWalHeaderBytes; offset + layout.frame_bytes() <= wal.size();
         offset += layout.frame_bytes()) {
        const auto frame = wal.substr(offset, layout.frame_bytes());
        if (big_endian_at(frame, 8) != layout.salt1 || big_endian_at(frame, 12) != layout.salt2 ||
            big_endian_at(frame, 0) == 0)
            break;
        WalChecksum sum =
            wal_checksum(frame.substr(0, 8), layout.big_endian_checksums, layout.after_valid);
        sum = wal_checksum(frame.substr(kWalFrameHeaderBytes), layout.big_endian_checksums, sum);
        if (sum != WalChecksum{big_endian_at(frame, 16), big_endian_at(frame, 20)})
            break;
        layout.after_valid = sum;
        layout.valid_bytes = offset + layout.frame_bytes();
        layout.last_page_number = big_endian_at(frame, 0);
        ++layout.valid_frames;
        if (const auto pages = big_endian_at(frame, 4); pages != 0) {
            layout.committed_frames = layout.valid_frames;
            layout.database_pages = pages;
        }
    }
    return layout;
}

// The page number and the page of the valid frame at `index` (0-based).
inline std::uint32_t wal_frame_page_number(std::string_view wal, const WalLayout& layout,
                                           std::size_t index) {
    return big_endian_at(wal, kWalHeaderBytes + index * layout.frame_bytes());
}
inline std::string wal_frame_page(std::string_view wal, const WalLayout& layout,
                                  std::size_t index) {
    const std::size_t offset =
        kWalHeaderBytes + index * layout.frame_bytes() + kWalFrameHeaderBytes;
    return std::string(wal.substr(offset, layout.page_size));
}

// The frame SQLite would write next after the valid ones: `page` for `page_number`, ending a
// transaction when `database_pages` is not 0. Advances `layout` past it, as writing it whole
// would.
inline std::string next_wal_frame(WalLayout& layout, std::uint32_t page_number,
                                  std::uint32_t database_pages, const std::string& page) {
    if (page.size() != layout.page_size)
        throw std::invalid_argument("a frame holds exactly one page");
    std::string frame(kWalFrameHeaderBytes, '\0');
    put_big_endian(frame, 0, page_number);
    put_big_endian(frame, 4, database_pages);
    put_big_endian(frame, 8, layout.salt1);
    put_big_endian(frame, 12, layout.salt2);
    WalChecksum sum = wal_checksum(std::string_view(frame).substr(0, 8),
                                   layout.big_endian_checksums, layout.after_valid);
    sum = wal_checksum(page, layout.big_endian_checksums, sum);
    put_big_endian(frame, 16, sum.first);
    put_big_endian(frame, 20, sum.second);
    layout.after_valid = sum;
    layout.valid_bytes += kWalFrameHeaderBytes + page.size();
    ++layout.valid_frames;
    if (database_pages != 0) {
        layout.committed_frames = layout.valid_frames;
        layout.database_pages = database_pages;
    }
    return frame + page;
}

// The header SQLite writes when it starts a log afresh after a checkpoint: the checkpoint
// sequence goes up and salt-1 with it, salt-2 is new. Returns the header; `layout` describes the
// new, still empty log.
inline std::string restarted_wal_header(WalLayout& layout, std::uint32_t new_salt2) {
    std::string header(kWalHeaderBytes, '\0');
    put_big_endian(header, 0, 0x377f0682u | (layout.big_endian_checksums ? 1u : 0u));
    put_big_endian(header, 4, 3007000);
    put_big_endian(header, 8, layout.page_size);
    ++layout.checkpoint_sequence;
    ++layout.salt1;
    layout.salt2 = new_salt2;
    put_big_endian(header, 12, layout.checkpoint_sequence);
    put_big_endian(header, 16, layout.salt1);
    put_big_endian(header, 20, layout.salt2);
    const WalChecksum sum =
        wal_checksum(std::string_view(header).substr(0, 24), layout.big_endian_checksums, {});
    put_big_endian(header, 24, sum.first);
    put_big_endian(header, 28, sum.second);
    layout.after_valid = sum;
    layout.valid_bytes = kWalHeaderBytes;
    layout.valid_frames = layout.committed_frames = 0;
    return header;
}

} // namespace test
