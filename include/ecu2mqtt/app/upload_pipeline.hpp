// The way of an upload after decoding: the ledger's decision (EcuRegistry) -> its state messages
// -> one store commit -> the ECU's answer -> the committed reading to the publisher. Also the
// periodic checks (offline, midnight, forgetting) and what polling an ECU found.
#pragma once

#include "ecu2mqtt/core/clock.hpp"
#include "ecu2mqtt/core/logger.hpp"
#include "ecu2mqtt/core/reading_sink.hpp"
#include "ecu2mqtt/ledger/ecu_registry.hpp"
#include "ecu2mqtt/ledger/time_zone.hpp"
#include "ecu2mqtt/ledger/weak_panels.hpp"
#include "ecu2mqtt/mqtt/polled_facts.hpp"

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace boost::asio {
class io_context;
}

namespace ecu2mqtt {

class ReadingPublisher;
class Store;

struct PipelineConfig : RegistryConfig {
    // Power points and daily energy older than this many days leave the history.
    int history_days = 400;
    // A reading that answers no upload (the midnight reset of today's energy) and could not be
    // written is tried again after this long, until written or superseded by an upload.
    std::chrono::milliseconds store_retry{30000};
    // --poll-interval: polled inverter values older than kPolledFreshIntervals of it are
    // published as unknown.
    std::chrono::seconds poll_interval{300};
    // --poll-ecus is on: the last polled facts of each ECU are loaded with its state, so that
    // its polled entities stay across a restart (with unknown values once old).
    bool polling = false;
    // Told of each ECU no longer tracked (evicted for another, or silent too long), so that
    // what follows it, such as its poll target, can let it go.
    std::function<void(const std::string&)> on_ecu_forgotten;
};

// What the ledger says of one ECU, for the status page.
struct EcuView {
    std::string ecu_id;
    std::optional<double> today_kwh;
    std::optional<std::int64_t> clock_offset_s;
    bool online = false;
    std::string model;
    // The newest trustworthy reading, known also right after a restart; unset before any.
    struct Live {
        std::string ecu_timestamp; // ISO, the ECU's clock
        std::int64_t received_unix = 0;
        double power_w = 0;
        double lifetime_kwh = 0;
    };
    std::optional<Live> live;
    std::vector<WeakChannel> weak_channels; // the weak-panel hint over its recent uploads
    // The time zone that gives its day (from polling it); empty: the learned clock offset.
    std::string time_zone;
    std::vector<LedgerInverter> inverters; // every inverter it tracks, reporting or not
};

// One upload per ECU is decided and committed at a time; the ECU is answered once its batch
// (reading, ledger state, history) is committed, and only then is the reading published.
// All work runs on the io_context's thread.
class UploadPipeline final : public ReadingSink {
  public:
    // With a store, each ECU's ledger and the history survive restarts; without one, nothing
    // is kept. `publisher` outlives the pipeline.
    UploadPipeline(boost::asio::io_context& io, PipelineConfig config, ReadingPublisher& publisher,
                   const Clock& clock, Logger& log, Store* store);
    ~UploadPipeline() override;
    UploadPipeline(const UploadPipeline&) = delete;
    UploadPipeline& operator=(const UploadPipeline&) = delete;

    // Loads every ECU's state, starts the publisher, and starts the periodic checks (ECU
    // timeout, local midnight). Throws std::runtime_error for an unusable broker URL.
    void start();
    // Saves what could not be saved yet, stops the checks, then shuts the publisher down.
    void shutdown(std::chrono::milliseconds budget);

    void on_realtime(const RealtimeUpload& upload, std::chrono::system_clock::time_point received,
                     HandlingDone done) override;
    void on_raw(const std::string& ecu_id, std::string_view raw) override;
    // What a poll of the ECU's port 8899 found (see net/ecu_poller): the whole of what is known,
    // and its time zone when the host has it. Call on the io_context's thread.
    void on_polled(const std::string& ecu_id, const PolledEcuFacts& facts,
                   std::shared_ptr<const TimeZone> zone);

    // The ECU's polled facts as last known (stored ones after a restart), if any. Call on the
    // io_context's thread.
    std::optional<PolledEcuFacts> polled_facts(const std::string& ecu_id) const;

    std::vector<EcuView> ecus() const;

    struct Impl;

  private:
    std::shared_ptr<Impl> impl_;
};

} // namespace ecu2mqtt
