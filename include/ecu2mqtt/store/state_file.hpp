// Small JSON state files: written atomically (temp file, fsync, rename), read back tolerantly.
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

namespace ecu2mqtt {

// Empty string on success, else what failed.
std::string write_json_atomically(const std::filesystem::path& path, const nlohmann::json& value);

struct StateRead {
    enum class Status { Missing, Ok, SetAside };
    Status status = Status::Missing;
    nlohmann::json value;
    std::string error;                  // with SetAside: why the file was not usable
    std::filesystem::path set_aside_as; // with SetAside: where the unusable file now is
};

// A file that is not valid JSON is renamed to `<name>.corrupt` (never deleted) and reported.
StateRead read_json_state(const std::filesystem::path& path);

} // namespace ecu2mqtt
