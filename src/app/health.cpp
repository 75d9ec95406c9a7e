#include "ecu2mqtt/app/health.hpp"

#include <fstream>
#include <nlohmann/json.hpp>

namespace ecu2mqtt {

namespace {

// On a full disk the new file cannot be made; the old one's block is still there to write over.
// Padded with spaces to its old length, so that nothing of a longer old text is left after it.
bool overwrite_in_place(const std::filesystem::path& file, std::string text) {
    std::error_code ec;
    const auto old_size = std::filesystem::file_size(file, ec);
    if (ec)
        return false;
    if (text.size() < old_size)
        text.append(old_size - text.size(), ' ');
    std::fstream out(file, std::ios::in | std::ios::out | std::ios::binary);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    out.close();
    return static_cast<bool>(out);
}

} // namespace

std::string write_heartbeat(const std::filesystem::path& file, const Heartbeat& beat) {
    std::error_code ec;
    std::filesystem::create_directories(file.parent_path(), ec);
    const auto text = nlohmann::json{{"time", beat.unix_time},
                                     {"mqtt_connected", beat.mqtt_connected},
                                     {"spooled", beat.spooled},
                                     {"dropped", beat.dropped}}
                          .dump() +
                      '\n';
    const auto temp = file.string() + ".tmp";
    {
        std::ofstream out(temp, std::ios::trunc);
        out << text;
        out.close(); // a full disk shows here, not before
        if (!out) {
            std::filesystem::remove(temp, ec);
            if (overwrite_in_place(file, text))
                return {};
            return "cannot write " + temp;
        }
    }
    std::filesystem::rename(temp, file, ec);
    return ec ? "cannot rename " + temp + ": " + ec.message() : std::string();
}

HealthVerdict check_heartbeat(const std::filesystem::path& file, std::int64_t now_unix,
                              std::int64_t max_age_seconds) {
    std::ifstream in(file);
    if (!in)
        return {false, "no heartbeat at " + file.string() + " (service not running?)"};
    try {
        const auto beat = nlohmann::json::parse(in);
        const auto age = now_unix - beat.at("time").get<std::int64_t>();
        const std::string details =
            "heartbeat " + std::to_string(age) + " s old, MQTT " +
            (beat.at("mqtt_connected").get<bool>() ? "connected" : "not connected") + ", " +
            std::to_string(beat.at("spooled").get<std::size_t>()) + " readings spooled";
        if (age > max_age_seconds || age < -max_age_seconds)
            return {false, "stale: " + details};
        return {true, "healthy: " + details};
    } catch (const nlohmann::json::exception& e) {
        return {false, "unreadable heartbeat " + file.string() + ": " + e.what()};
    }
}

} // namespace ecu2mqtt
