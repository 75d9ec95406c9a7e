// The service's heartbeat file, and the check that reads it for container health checks.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

namespace ecu2mqtt {

struct Heartbeat {
    std::int64_t unix_time = 0;
    bool mqtt_connected = false;
    std::size_t spooled = 0;
    std::uint64_t dropped = 0;
};

inline std::filesystem::path heartbeat_path(const std::string& state_dir) {
    return std::filesystem::path(state_dir) / "heartbeat.json";
}

// Replaced every few seconds: renamed into place but not fsynced, to spare SD cards. On a full
// disk, where no new file can be made, the old one is written over in place.
std::string write_heartbeat(const std::filesystem::path& file, const Heartbeat& beat);

struct HealthVerdict {
    bool healthy = false;
    std::string message;
};

// Healthy while the heartbeat is younger than `max_age_seconds`: the event loop is turning.
// A broker that is away is reported but is not unhealthy; restarting would not bring it back.
HealthVerdict check_heartbeat(const std::filesystem::path& file, std::int64_t now_unix,
                              std::int64_t max_age_seconds);

} // namespace ecu2mqtt
