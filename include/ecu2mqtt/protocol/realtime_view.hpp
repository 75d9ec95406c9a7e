// A real-time upload decoded without copying: the fields of RealtimeUpload, with every text a
// view into the message or into the result's own storage. The result is meant to be reused:
// decoding into it again clears it but keeps its memory, so once it has grown to the size of the
// uploads seen, decoding allocates nothing.
#pragma once

#include "ecu2mqtt/protocol/local_time.hpp"

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace ecu2mqtt {

struct UnknownFieldView {
    std::string_view key; // "bytes_10_15": its offsets inside the header, block or record
    std::string_view raw; // the bytes as the message has them; RealtimeUpload keeps them escaped
};

struct ChannelView {
    int channel = 0; // 1-based, as the record itself numbers it
    double voltage_v = 0;
    double current_a = 0;
    double power_w = 0;
    std::span<const UnknownFieldView> unknown;
};

struct InverterView {
    std::string_view uid;
    std::string_view model_code;
    std::string_view model;
    double frequency_hz = 0;
    double temperature_c = 0;
    double power_w = 0; // sum of the channels
    std::span<const ChannelView> channels;
    std::span<const UnknownFieldView> unknown;
};

struct SkippedBlockView {
    std::size_t offset = 0;       // of the block in the message
    std::size_t error_offset = 0; // of what did not fit, in the message
    std::string_view reason;
    std::string_view raw; // the block's bytes
};

struct DecodeErrorView {
    std::size_t offset = 0;
    std::string_view reason;
};

// Text the decoder writes itself (notes, reasons, names of unknown models). Kept in blocks that
// never move, so views of earlier text stay valid while more is added; clear() keeps the blocks.
class TextArena {
  public:
    std::string_view keep(std::string_view text);
    void clear();

  private:
    struct Block {
        std::unique_ptr<char[]> bytes;
        std::size_t capacity = 0;
    };
    std::vector<Block> blocks_;
    std::size_t current_ = 0; // the block being filled
    std::size_t used_ = 0;    // bytes used in it
};

struct RealtimeView {
    std::string_view signature; // "APS18"
    std::string_view ecu_id;
    std::string_view ecu_model;
    double power_w = 0;
    double lifetime_energy_kwh = 0;
    LocalDateTime timestamp;
    int inverters_online = 0;
    std::vector<InverterView> inverters;
    std::vector<UnknownFieldView> unknown;
    std::vector<std::string_view> notes;
    std::vector<SkippedBlockView> skipped_blocks;
    DecodeErrorView error; // what did not fit, when decoding returned false

    // What the views above point into when not into the message.
    struct Storage {
        std::vector<ChannelView> channels;            // of all inverters, in order
        std::vector<UnknownFieldView> unknown_fields; // of all blocks and channel records
        std::vector<std::size_t> block_starts;        // offsets of the blocks, then the trailer's
        std::string scratch;                          // where a text is composed
        TextArena text;                               // where composed texts are kept
    } storage;

    RealtimeView() = default;
    // A copy's spans would point into the original's storage.
    RealtimeView(const RealtimeView&) = delete;
    RealtimeView& operator=(const RealtimeView&) = delete;
    RealtimeView(RealtimeView&&) = default;
    RealtimeView& operator=(RealtimeView&&) = default;
};

} // namespace ecu2mqtt
