// The upload pipeline's state, shared by its two halves: the uploads (upload_pipeline.cpp) and
// the upkeep between them (pipeline_upkeep.cpp).
#pragma once

#include "ecu2mqtt/app/upload_pipeline.hpp"
#include "ecu2mqtt/app/weak_panel_watch.hpp"
#include "ecu2mqtt/mqtt/reading_publisher.hpp"
#include "ecu2mqtt/net/asio.hpp"
#include "ecu2mqtt/store/store.hpp"
#include "ledger_figures.hpp"

#include <deque>
#include <map>
#include <nlohmann/json.hpp>

namespace ecu2mqtt {

// An upload waiting for the one before it, of the same ECU, to be committed.
struct WaitingUpload {
    RealtimeUpload upload;
    std::chrono::system_clock::time_point received;
    ReadingSink::HandlingDone done;
};

// What the pipeline keeps per ECU besides its ledger: the newest live state payload, which a
// midnight reset or a late reading of today publishes again with a new `today_energy_kwh`.
struct EcuEntry {
    explicit EcuEntry(EcuLedger& l, nlohmann::json live = nullptr)
        : ledger(l), live_state(std::move(live)) {}

    EcuLedger& ledger;         // the registry's: forgotten there when this entry goes
    nlohmann::json live_state; // null until a live reading (or rebuilt from the ledger)
    bool unsaved = false;      // the last write of its state failed: tried again
    // One upload per ECU is decided and committed at a time, so that each is decided on what
    // the one before left; the others wait here, in order.
    bool committing = false;
    std::deque<WaitingUpload> waiting;
    PolledEcuFacts polled;       // from its port 8899, when polled: added to what it publishes
    bool polled_unsaved = false; // polled while an upload was being committed: saved after it
    // Its polled inverters come from the stored record, not yet from a reply of this run.
    bool polled_inverters_stored = false;

    // An upload of it is being decided or written: it must not be forgotten meanwhile, or the
    // commit would land after its state was dropped (and a first upload has no state yet).
    bool busy() const { return committing || !waiting.empty(); }
};

struct UploadPipeline::Impl : std::enable_shared_from_this<UploadPipeline::Impl> {
    Impl(boost::asio::io_context& io, PipelineConfig cfg, ReadingPublisher& publisher,
         const Clock& clock, Logger& log, Store* store)
        : io(io), config(std::move(cfg)), publisher(publisher), clock(clock), log(log),
          store(store), registry(config), tick_timer(io), keep_retry_timer(io) {}

    static constexpr std::size_t kMaxWaitingPerEcu = 8;

    boost::asio::io_context& io;
    PipelineConfig config;
    ReadingPublisher& publisher;
    const Clock& clock;
    Logger& log;
    Store* store; // null: nothing survives a restart
    EcuRegistry registry;
    std::map<std::string, EcuEntry> ecus;
    WeakPanelWatch weak_panels;
    // Per ECU, the last polled zone refused for disagreeing with its uploads (warned once).
    std::map<std::string, std::string> zones_refused;
    // Refusals beyond max_ecus: a flood of made-up ids must not flood the log too.
    WarningBudget refusal_warnings{10, std::chrono::minutes(1)};
    WarningBudget held_inverter_warnings{10, std::chrono::minutes(1)};
    std::optional<std::chrono::system_clock::time_point> last_prune;
    boost::asio::steady_timer tick_timer;
    boost::asio::steady_timer keep_retry_timer; // readings that answer no upload, not written yet
    bool keep_retry_armed = false;
    std::map<std::string, std::vector<OutgoingMessage>> unkept_resets; // by ECU

    // What an upload's commit carries back to the io thread.
    struct Kept {
        std::uint64_t sequence = 0; // 0: nothing to publish
        std::size_t bytes = 0;
        std::int64_t at_s = 0;
        std::vector<OutgoingMessage> batch;
        nlohmann::json state;
        ChannelMoment moment; // of a live upload, for the weak-panel hint
    };

    // The uploads (upload_pipeline.cpp).
    void on_realtime(const RealtimeUpload& upload, std::chrono::system_clock::time_point received,
                     ReadingSink::HandlingDone done);
    EcuEntry* entry_for(const std::string& id);
    void decide_and_keep(const std::string& id, EcuEntry& entry, const RealtimeUpload& sent,
                         std::chrono::system_clock::time_point received,
                         ReadingSink::HandlingDone done);
    void upload_committed(const std::string& id, const UploadDecision& decision, Kept kept,
                          const std::string& error, ReadingSink::HandlingDone done);
    void next_waiting(const std::string& id);
    void publish_weak_panels(const std::string& id);

    // The upkeep (pipeline_upkeep.cpp).
    void start();
    void load_state();
    void load_weak_panel_moments(const std::string& id);
    void tick();
    void prune_history(std::chrono::system_clock::time_point now);
    void on_polled(const std::string& id, const PolledEcuFacts& facts,
                   std::shared_ptr<const TimeZone> zone);
    void forget_ecu(const std::string& id, const std::string& why);
    void keep_reading(const std::string& ecu_id, std::vector<OutgoingMessage> batch);
    void keep_reading_later(const std::string& ecu_id, std::vector<OutgoingMessage> batch);
    void save(const std::string& id, EcuEntry& entry, WriteBatch write = {});
    void state_saved(const std::string& id, const std::string& error);
    void shutdown();

    // Shared.
    bool busy(const std::string& id) const;
    EcuBusy busy_check() const;
    EcuDevices devices_of(const EcuEntry& entry) const;
    void describe(const std::string& id, const EcuEntry& entry);
    void log_events(const std::string& id, const std::vector<LedgerEvent>& events);
    std::optional<std::int64_t> offset_seconds(const EcuEntry& entry) const;
    nlohmann::json live_state_payload(const std::string& id, const EcuEntry& entry) const;
    void persist(WriteBatch batch, Store::Done done);
    static std::int64_t unix_seconds(std::chrono::system_clock::time_point t) {
        return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
    }
};

} // namespace ecu2mqtt
