// What the upload path hands decoded readings to, and what it learns back: the seam between the
// service and whatever keeps and publishes readings.
#pragma once

#include "ecu2mqtt/protocol/ecu_message.hpp"
#include "ecu2mqtt/protocol/local_time.hpp"

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace ecu2mqtt {

// What became of an upload handed to the sink.
struct UploadHandling {
    bool handled = true;    // durably kept (committed), or a repeat of one already kept
    bool duplicate = false; // an upload already kept: not published again
    // Set while this ECU has a gap (an upload that could not be kept): the last upload kept
    // before it. The reply names it so that the ECU sends what follows again.
    std::optional<LocalDateTime> resend_from;
    bool clock_suspect = false;   // stamped too far ahead: answered, used for nothing
    bool counter_suspect = false; // a lifetime no plant could reach: answered, used for nothing
    bool live = false;            // the newest reading: it is what the state now shows
    bool untracked = false;       // beyond --max-ecus: answered, kept raw, not published
};

// Where decoded readings go (the MQTT publisher). Called on the io thread; must not block.
class ReadingSink {
  public:
    using HandlingDone = std::function<void(UploadHandling)>;
    virtual ~ReadingSink() = default;
    // `done` runs exactly once, on the io thread, when the upload is durably kept (or could not
    // be): the ECU is answered only then.
    virtual void on_realtime(const RealtimeUpload& upload,
                             std::chrono::system_clock::time_point received, HandlingDone done) = 0;
    // Every message as received, whatever its kind, with the ECU id when one is known.
    virtual void on_raw(const std::string& ecu_id, std::string_view raw) = 0;
};

} // namespace ecu2mqtt
