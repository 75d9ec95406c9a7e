// Record mode: every message with its port, peer, arrival time and reply, one JSON Lines file
// per day, in a form `ecu2mqtt replay` reads back.
#pragma once

#include "ecu2mqtt/core/clock.hpp"
#include "ecu2mqtt/core/logger.hpp"
#include "ecu2mqtt/net/listener.hpp"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace ecu2mqtt {

// One line of a recording:
//   {"time":"2024-02-06T11:22:20+01:00","port":8995,"peer":"192.168.1.50:53966",
//    "message":"APS18…END\n","reply":"10120240206111714"}
// `message` and `reply` are JSON strings when the bytes are printable ASCII (with \r \n \t);
// otherwise `message_base64` / `reply_base64` hold them. `reply` is null when none was sent.
nlohmann::json recording_line(const std::string& time, std::uint16_t port, const std::string& peer,
                              std::string_view message, const std::optional<std::string>& reply);

struct RecordedMessage {
    std::string time;
    std::uint16_t port = 0;
    std::string peer;
    std::string message;
    std::optional<std::string> reply;
};
// Throws std::invalid_argument for a line that is not a recording line.
RecordedMessage parse_recording_line(const std::string& line);

class MessageRecorder {
  public:
    virtual ~MessageRecorder() = default;
    virtual void record(const InboundMessage& message, const std::optional<std::string>& reply) = 0;
};

// Appends to DIR/ecu2mqtt-YYYY-MM-DD.jsonl (local date), opening the next file at midnight.
// The recordings together stay under `max_bytes`: the oldest days are deleted first, and when
// today's file alone reaches the limit, recording pauses until the next day (logged once).
class FileRecorder final : public MessageRecorder {
  public:
    FileRecorder(std::filesystem::path directory, const Clock& clock, Logger& log,
                 std::uintmax_t max_bytes = std::uintmax_t(512) << 20)
        : directory_(std::move(directory)), clock_(clock), log_(log), max_bytes_(max_bytes) {}
    void record(const InboundMessage& message, const std::optional<std::string>& reply) override;

  private:
    void open_day(const std::string& day);
    // Deletes the oldest recordings (never today's) until `needed` more bytes fit under the
    // limit; returns the bytes still taken.
    std::uintmax_t make_room(std::uintmax_t needed);

    std::filesystem::path directory_;
    const Clock& clock_;
    Logger& log_;
    std::uintmax_t max_bytes_;
    std::string open_day_;
    std::ofstream out_;
    std::uintmax_t bytes_ = 0; // all recordings, as far as this recorder knows
    bool paused_ = false;
};

} // namespace ecu2mqtt
