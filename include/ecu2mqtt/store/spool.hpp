// An on-disk queue of readings waiting for the broker: one file per reading, written atomically,
// bounded in bytes (the oldest are dropped first, and counted).
#pragma once

#include <cstdint>
#include <deque>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace ecu2mqtt {

class Spool {
  public:
    struct Entry {
        std::uint64_t sequence = 0;
        nlohmann::json reading;
    };

    Spool(std::filesystem::path directory, std::uintmax_t max_bytes)
        : directory_(std::move(directory)), max_bytes_(max_bytes) {}

    // Indexes what a previous run left. Unreadable entries are set aside as `*.corrupt` and
    // described in the returned list; they never stop the start.
    std::vector<std::string> open();

    // Durable once this returns an empty string; otherwise the error. May drop the oldest
    // entries to stay under the size cap.
    std::string push(const nlohmann::json& reading);

    // The oldest entry, read from disk (nullopt when empty). A file that vanished or is corrupt
    // is skipped and reported through `problem`.
    std::optional<Entry> front(std::string* problem = nullptr);
    // The oldest entry after `sequence` (0: the oldest of all); an unreadable one is dropped and
    // described in `problems`, and the next is tried.
    std::optional<Entry> next_after(std::uint64_t sequence, std::vector<std::string>& problems);
    // Removes an entry wherever it is (a no-op for one already gone).
    void pop(std::uint64_t sequence);
    // When the oldest entry was written (seconds since the Unix epoch), nullopt when empty.
    std::optional<std::int64_t> oldest_written() const;
    // The sequence number given to the last successful push().
    std::uint64_t last_pushed() const { return next_sequence_ - 1; }

    std::size_t size() const { return index_.size(); }
    std::uintmax_t bytes() const { return bytes_; }
    std::uint64_t dropped() const { return dropped_; }

  private:
    struct Indexed {
        std::uint64_t sequence;
        std::uintmax_t bytes;
    };
    std::filesystem::path path_of(std::uint64_t sequence) const;
    void drop_front();

    std::filesystem::path directory_;
    std::uintmax_t max_bytes_;
    std::deque<Indexed> index_;
    std::uintmax_t bytes_ = 0;
    std::uint64_t next_sequence_ = 1;
    std::uint64_t dropped_ = 0;
};

} // namespace ecu2mqtt
