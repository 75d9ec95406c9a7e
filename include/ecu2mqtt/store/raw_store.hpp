// Messages the service could not fully use, kept in the state directory for a later version to
// decode: undecodable messages, uploads with inverter blocks left out, clock-suspect uploads.
#pragma once

#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

namespace ecu2mqtt {

// One JSON file per message (a recording line, see recorder.hpp, plus `ecu` and `why`), named
// so that they sort by arrival. Bounded: past `max_files` or `max_bytes`, the oldest go first.
class RawMessageStore {
  public:
    RawMessageStore(std::filesystem::path directory, std::size_t max_files,
                    std::uintmax_t max_bytes);

    struct Kept {
        std::filesystem::path file; // empty when it could not be written
        std::string error;
    };
    // `line` is a recording line; returns where it went.
    Kept keep(const nlohmann::json& line, const std::string& ecu_id, const std::string& why);

    std::size_t size() const { return files_.size(); }

  private:
    void make_room(std::uintmax_t incoming);

    std::filesystem::path directory_;
    std::size_t max_files_;
    std::uintmax_t max_bytes_;
    std::vector<std::pair<std::filesystem::path, std::uintmax_t>> files_; // oldest first
    std::uintmax_t bytes_ = 0;
    std::uint64_t next_ = 1;
};

} // namespace ecu2mqtt
