// Turns each framed ECU message into the fake EMA reply, a log line and a reading for the sink.
#pragma once

#include "ecu2mqtt/app/recorder.hpp"
#include "ecu2mqtt/core/clock.hpp"
#include "ecu2mqtt/core/logger.hpp"
#include "ecu2mqtt/core/reading_sink.hpp"
#include "ecu2mqtt/core/telemetry.hpp"
#include "ecu2mqtt/net/listener.hpp"
#include "ecu2mqtt/protocol/ecu_message.hpp"
#include "ecu2mqtt/protocol/realtime_view.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <vector>

namespace ecu2mqtt {

// What became of an upload, as ecu2mqtt_uploads_total's `verdict` label names it. Uploads
// beyond --max-ecus (kept raw only) count as `not_kept`.
std::string upload_verdict_label(const UploadHandling& handling);

class Store;

struct ServiceCounters {
    std::uint64_t realtime = 0;
    std::uint64_t other = 0;
    std::uint64_t control = 0;
    std::uint64_t undecodable = 0;
    std::uint64_t incomplete = 0;
    std::uint64_t duplicates = 0;
    std::uint64_t not_handled = 0;   // uploads that could not be kept (answered to re-send)
    std::uint64_t not_allowed = 0;   // ECU ids outside the allow-list
    std::uint64_t ema_relayed = 0;   // full proxy: EMA's reply passed to the ECU
    std::uint64_t ema_fallbacks = 0; // full proxy: EMA unreachable, slow or silent; fake reply sent
    std::uint64_t ema_blocked = 0;   // full proxy: unusual EMA reply replaced (--block-firmware)
};

struct ServiceOptions {
    // Answer an upload that could not be kept with the last one that was, so the ECU re-sends.
    bool backfill = true;
    // ECU ids accepted; empty accepts every ECU.
    std::vector<std::string> allowed_ecus;
    // Full proxy: replace EMA replies other than the plain acknowledgement ("101" + 14 digits),
    // which is how a firmware update or any other unknown command would have to arrive.
    bool block_firmware = false;
};

class Service final : public MessageHandler {
  public:
    Service(const Clock& clock, Logger& log, ReadingSink* sink, ServiceOptions options = {},
            MessageRecorder* recorder = nullptr)
        : clock_(clock), log_(log), sink_(sink), options_(std::move(options)), recorder_(recorder) {
    }

    void on_message(const InboundMessage& message, ReplyDone reply) override;
    void on_incomplete(const InboundMessage& leftover, std::string_view why) override;
    bool wants_upstream(const InboundMessage& message) override;

    const ServiceCounters& counters() const { return counters_; }
    // Uploads, replies and decode errors also go to `telemetry` (the status page), if set.
    void set_telemetry(Telemetry* telemetry) { telemetry_ = telemetry; }
    // Messages not fully used (undecodable, inverter blocks left out, clock-suspect) are kept
    // there; without a store they are logged whole.
    void set_store(Store* store) { store_ = store; }
    // Told of each upload that is its ECU's new reading, with its peer ("address:port"): where
    // the ECU uploads from, e.g. for polling with auto.
    using UploadObserver = std::function<void(const std::string& ecu_id, const std::string& peer)>;
    void set_upload_observer(UploadObserver observer) { upload_observer_ = std::move(observer); }

  private:
    void handle(const InboundMessage& message, ReplyDone done);
    // The answer to an upload, once the sink has kept it (or could not).
    std::optional<std::string> finish_upload(const InboundMessage& message,
                                             const std::string& ecu_id,
                                             const RealtimeUpload& upload,
                                             const UploadHandling& handling);
    std::optional<std::string> answer(bool is_control, const std::string& ecu_id,
                                      std::optional<LocalDateTime> message_time,
                                      const InboundMessage& message,
                                      std::optional<LocalDateTime> resend_from = std::nullopt);
    bool allowed(const std::string& ecu_id) const;
    // `announce`: log each one (off where a rate-limited warning already covers them).
    void keep_raw(const InboundMessage& message, const std::string& ecu_id, const std::string& why,
                  bool announce = true);
    // Counts and logs an ECU outside the allow-list; false means: close without an answer.
    bool admit(const std::string& ecu_id, const InboundMessage& message);
    // In full proxy mode: EMA's reply when there is a usable one, else `fake`.
    std::optional<std::string> relay_or(std::optional<std::string> fake,
                                        const InboundMessage& message, const std::string& ecu_id);

    const Clock& clock_;
    Logger& log_;
    ReadingSink* sink_;
    ServiceOptions options_;
    MessageRecorder* recorder_;
    ServiceCounters counters_;
    std::map<std::string, LocalDateTime> last_acknowledged_; // per ECU id
    Telemetry* telemetry_ = nullptr;
    UploadObserver upload_observer_;
    Store* store_ = nullptr;
    // Every message is decoded through this one view on the io thread, so that the decode
    // allocates only the owning copy the pipeline keeps.
    RealtimeView decode_view_;
    // The reply chosen while handling the current message (rule and ECU id), for telemetry.
    std::string reply_rule_;
    std::string reply_ecu_;
};

} // namespace ecu2mqtt
