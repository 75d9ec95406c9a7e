#include "upload_pipeline_impl.hpp"

#include "ecu2mqtt/mqtt/ecu_state_payload.hpp"
#include "ecu2mqtt/mqtt/reading_codec.hpp"

#include <algorithm>
#include <set>

namespace ecu2mqtt {

namespace {

// Whether two states describe the same Home Assistant devices (their discovery is the same).
bool same_devices(const EcuLedgerState& a, const EcuLedgerState& b) {
    return a.ecu_model == b.ecu_model &&
           std::equal(a.inverters.begin(), a.inverters.end(), b.inverters.begin(),
                      b.inverters.end(), [](const auto& x, const auto& y) {
                          return x.first == y.first && x.second.model_code == y.second.model_code &&
                                 x.second.model == y.second.model &&
                                 x.second.channels == y.second.channels;
                      });
}

LogLevel level_of(EventLevel level) {
    return level == EventLevel::Warn ? LogLevel::Warn : LogLevel::Info;
}

} // namespace

// The ECU's entry, or nullptr when tracking one more ECU would pass the cap.
EcuEntry* UploadPipeline::Impl::entry_for(const std::string& id) {
    if (const auto it = ecus.find(id); it != ecus.end())
        return &it->second;
    const auto admitted = registry.admit(id, busy_check());
    if (!admitted.admitted) {
        if (const auto left_out = refusal_warnings.allow(clock.now()))
            log.warn("ecu_limit_reached",
                     {{"ecu", id},
                      {"limit", std::to_string(config.max_ecus)},
                      {"refusals_not_logged", std::to_string(*left_out)},
                      {"action", "answered and kept raw, not published; the ECUs tracked "
                                 "have a history of uploads or are online; raise "
                                 "--max-ecus or use --allow-ecus"}});
        return nullptr;
    }
    for (const auto& quiet : admitted.evict)
        forget_ecu(quiet, "to make room for " + id + " (--max-ecus reached; it had fewer than " +
                              std::to_string(kEstablishedAfter) + " readings kept)");
    auto& entry = ecus.emplace(id, EcuEntry(registry.add(id))).first->second;
    publisher.describe(id, {}); // tracked from now on, with no device yet
    return &entry;
}

void UploadPipeline::Impl::on_realtime(const RealtimeUpload& upload,
                                       std::chrono::system_clock::time_point received,
                                       ReadingSink::HandlingDone done) {
    EcuEntry* entry = entry_for(upload.ecu_id);
    if (!entry) {
        UploadHandling untracked; // answered as usual
        untracked.untracked = true;
        done(untracked);
        return;
    }
    if (entry->committing) {
        // An ECU sends one upload at a time; more than a few waiting come from somewhere
        // else (a host replaying its id), and must not grow without bound: answered as not
        // kept, so that a real ECU among them sends again.
        if (entry->waiting.size() >= kMaxWaitingPerEcu) {
            log.warn("ecu_uploads_queued_too_many",
                     {{"ecu", upload.ecu_id},
                      {"waiting", std::to_string(entry->waiting.size())},
                      {"action", "answered without keeping; the ECU sends it again"}});
            UploadHandling refused;
            refused.handled = false;
            refused.resend_from = entry->ledger.resend_from();
            if (!refused.resend_from && entry->ledger.state().live)
                refused.resend_from = entry->ledger.state().live->timestamp;
            done(refused);
            return;
        }
        entry->waiting.push_back({upload, received, std::move(done)});
        return;
    }
    decide_and_keep(upload.ecu_id, *entry, upload, received, std::move(done));
}

// Decides, then commits the reading, the ledger's new state and the history in one batch;
// the ECU's answer waits for that commit.
void UploadPipeline::Impl::decide_and_keep(const std::string& id, EcuEntry& entry,
                                           const RealtimeUpload& sent,
                                           std::chrono::system_clock::time_point received,
                                           ReadingSink::HandlingDone done) {
    const auto held = registry.held_elsewhere(id, sent, unix_seconds(received));
    RealtimeUpload without_held;
    if (!held.empty()) {
        without_held = sent;
        std::erase_if(without_held.inverters,
                      [&](const InverterReading& reading) { return held.contains(reading.uid); });
        if (const auto left_out = held_inverter_warnings.allow(clock.now()))
            log.warn("inverter_held_by_another_ecu",
                     {{"ecu", id},
                      {"inverters", std::to_string(held.size())},
                      {"first", *held.begin()},
                      {"warnings_not_logged", std::to_string(*left_out)},
                      {"action", "left out: another ECU reported it within the last day"}});
    }
    const RealtimeUpload& upload = held.empty() ? sent : without_held;
    UploadDecision decision = entry.ledger.decide(upload, received);
    if (!decision.refused_inverters.empty())
        log.warn("inverter_limit_reached",
                 {{"ecu", id},
                  {"limit", std::to_string(config.max_inverters_per_ecu)},
                  {"left_out", std::to_string(decision.refused_inverters.size())},
                  {"action", "raise --max-inverters-per-ecu"}});

    std::vector<OutgoingMessage> batch;
    nlohmann::json state;
    switch (decision.verdict) {
    case UploadVerdict::Live: {
        auto live = live_messages(publisher.topics(), id, upload, reading_figures(decision),
                                  clock.iso_with_offset(received), entry.polled,
                                  unix_seconds(clock.now()) -
                                      kPolledFreshIntervals * config.poll_interval.count());
        batch = std::move(live.batch);
        state = std::move(live.state);
        break;
    }
    case UploadVerdict::Late:
        batch = late_messages(publisher.topics(), id, upload, reading_figures(decision),
                              clock.iso_with_offset(received),
                              entry.ledger.state().daily.today_kwh(), entry.live_state);
        break;
    case UploadVerdict::Repeat:
    case UploadVerdict::ClockSuspect:
    case UploadVerdict::CounterSuspect:
        break; // nothing to publish: the stored state keeps that the ECU was heard
    }
    WriteBatch write;
    Kept kept;
    if (!batch.empty()) {
        kept.sequence = publisher.next_sequence();
        auto record = encode_reading(batch);
        kept.bytes = record.size();
        kept.at_s = unix_seconds(received);
        write.put_reading(kept.sequence, id, kept.at_s, std::move(record));
    }
    if (decision.verdict == UploadVerdict::Live || decision.verdict == UploadVerdict::Late)
        write.add_power_point(
            {id, format_iso(upload.timestamp), upload.power_w, decision.counter_kwh});
    if (decision.verdict == UploadVerdict::Live) {
        kept.moment = WeakPanelWatch::moment_of(*decision.upload);
        if (store) // the weak-panel hint goes on from its day's moments after a restart
            write.add_channel_powers(
                {id, format_iso(upload.timestamp), encode_channel_powers(kept.moment)});
    }
    if (decision.remembered)
        write.remember_kept(id, format_compact(decision.remembered->timestamp),
                            std::to_string(decision.remembered->fingerprint),
                            EcuLedger::kKeptMemory);
    const bool live = decision.verdict == UploadVerdict::Live;
    write.put_ecu_state(
        id, state_record(id, *decision.if_kept, live ? state : entry.live_state, entry.polled));
    kept.batch = std::move(batch);
    kept.state = std::move(state);
    entry.committing = true;
    persist(std::move(write),
            [weak = weak_from_this(), id, decision = std::move(decision), kept = std::move(kept),
             done = std::move(done)](const std::string& error) mutable {
                if (auto self = weak.lock())
                    self->upload_committed(id, decision, std::move(kept), error, std::move(done));
            });
}

void UploadPipeline::Impl::upload_committed(const std::string& id, const UploadDecision& decision,
                                            Kept kept, const std::string& error,
                                            ReadingSink::HandlingDone done) {
    UploadHandling handling;
    handling.duplicate = decision.verdict == UploadVerdict::Repeat;
    handling.clock_suspect = decision.verdict == UploadVerdict::ClockSuspect;
    handling.counter_suspect = decision.verdict == UploadVerdict::CounterSuspect;
    handling.live = decision.verdict == UploadVerdict::Live;
    const auto it = ecus.find(id);
    if (it == ecus.end()) { // not expected (a busy ECU is never forgotten): not followed
        handling.handled = error.empty();
        if (error.empty() && kept.sequence)
            publisher.reading_committed(kept.sequence, kept.bytes, kept.at_s,
                                        std::move(kept.batch));
        done(handling);
        return;
    }
    EcuEntry& entry = it->second;
    entry.committing = false;
    if (!error.empty()) {
        log.error("store_write_failed",
                  {{"ecu", id},
                   {"error", error},
                   {"database", store ? store->file().string() : ""},
                   {"action", "free space there or move --state-dir (or end whatever holds "
                              "the database locked); the ECU is asked to send it again"}});
        const bool same_before = same_devices(entry.ledger.state(), *decision.if_not_kept);
        entry.ledger.not_kept(decision);
        log_events(id, decision.events_if_not_kept);
        save(id, entry);
        if (!same_before)
            describe(id, entry);
        handling.handled = false;
        handling.resend_from = decision.resend_from_if_not_kept;
        // The store is failing: the uploads waiting behind this one would each wait for
        // their own failure. They are answered now, to be sent again.
        for (auto& waiting : std::exchange(entry.waiting, {})) {
            UploadHandling refused;
            refused.handled = false;
            refused.resend_from = entry.ledger.resend_from();
            waiting.done(refused);
        }
    } else {
        if (kept.sequence)
            publisher.reading_committed(kept.sequence, kept.bytes, kept.at_s,
                                        std::move(kept.batch));
        const bool new_devices = !same_devices(entry.ledger.state(), *decision.if_kept);
        const bool decided_on_older = entry.ledger.state().revision != decision.revision;
        entry.ledger.commit(decision);
        log_events(id, decision.events);
        if (decision.verdict == UploadVerdict::Live)
            entry.live_state = std::move(kept.state);
        const bool hint_was_ready = weak_panels.ready(id);
        if (decision.verdict == UploadVerdict::Live &&
            weak_panels.observe(id, std::move(kept.moment)))
            publish_weak_panels(id);
        // Its inverters' "Weak panel" entities come with their devices' discovery.
        const bool hint_now_ready = !hint_was_ready && weak_panels.ready(id);
        // A tick or a poll came in between: the stored state lacks its change.
        if (decided_on_older || entry.polled_unsaved)
            save(id, entry);
        if (new_devices || hint_now_ready)
            describe(id, entry);
        publisher.set_online(id, true);
        publisher.refresh_bridge_info();
        publisher.publish_queued();
        handling.resend_from = decision.resend_from;
        // Discovery after the commit: it describes what the ledger now knows. Configs are
        // built only when the devices changed (reconnects and Home Assistant's restarts send
        // the queued ones again), and after the answer: building them is the costliest step
        // of a new installation's first upload, and ECUs waiting for theirs come first.
        if (new_devices || hint_now_ready)
            boost::asio::post(io, [weak = weak_from_this(), id] {
                if (auto self = weak.lock(); self && self->ecus.contains(id)) {
                    self->publisher.announce(id);
                    self->publisher.publish_queued();
                }
            });
    }
    done(handling);
    next_waiting(id);
}

void UploadPipeline::Impl::next_waiting(const std::string& id) {
    const auto it = ecus.find(id);
    if (it == ecus.end() || it->second.committing || it->second.waiting.empty())
        return;
    WaitingUpload next = std::move(it->second.waiting.front());
    it->second.waiting.pop_front();
    decide_and_keep(id, it->second, next.upload, next.received, std::move(next.done));
}

// The weak-panel hint of one ECU (see WeakPanelWatch), with its Home Assistant entity.
void UploadPipeline::Impl::publish_weak_panels(const std::string& id) {
    const auto& topics = publisher.topics();
    if (publisher.discovery() && weak_panels.ready(id)) {
        const auto entity = weak_panel_discovery(topics, id, publisher.sw_version());
        publisher.put_latest({entity.topic, entity.payload.dump(), true});
    }
    publisher.put_latest({weak_panels_topic(topics, id),
                          weak_panels_json(shown(weak_panels.weak(id))).dump(), true});
}

bool UploadPipeline::Impl::busy(const std::string& id) const {
    const auto it = ecus.find(id);
    return it != ecus.end() && it->second.busy();
}

EcuBusy UploadPipeline::Impl::busy_check() const {
    return [this](const std::string& id) { return busy(id); };
}

EcuDevices UploadPipeline::Impl::devices_of(const EcuEntry& entry) const {
    const auto& state = entry.ledger.state();
    EcuDevices devices{state.ecu_model, {}, entry.polled, weak_panels.ready(entry.ledger.ecu_id())};
    devices.inverters.reserve(state.inverters.size());
    for (const auto& [uid, inverter] : state.inverters)
        devices.inverters.push_back(known_from(inverter));
    return devices;
}

void UploadPipeline::Impl::describe(const std::string& id, const EcuEntry& entry) {
    publisher.describe(id, devices_of(entry));
}

void UploadPipeline::Impl::log_events(const std::string& id,
                                      const std::vector<LedgerEvent>& events) {
    for (const auto& e : events) {
        if (!log.enabled(level_of(e.level)))
            continue;
        std::vector<LogField> fields{{"ecu", id}};
        for (const auto& [key, value] : e.fields)
            fields.push_back({key, value});
        log.log(level_of(e.level), e.name, std::span<const LogField>(fields));
    }
}

std::optional<std::int64_t> UploadPipeline::Impl::offset_seconds(const EcuEntry& entry) const {
    if (const auto offset = entry.ledger.clock_offset())
        return offset->count();
    return std::nullopt;
}

nlohmann::json UploadPipeline::Impl::live_state_payload(const std::string& id,
                                                        const EcuEntry& entry) const {
    const auto& ledger = entry.ledger.state();
    const auto last_seen = ledger.live && entry.live_state.is_null()
                               ? clock.iso_with_offset(std::chrono::system_clock::time_point(
                                     std::chrono::seconds(ledger.live->received_s)))
                               : std::string();
    return ecu2mqtt::live_state_payload(id, ledger_live_figures(ledger), ledger.daily.today_kwh(),
                                        entry.live_state, offset_seconds(entry), entry.polled,
                                        last_seen);
}

// Commits `batch`; `done` runs on the io thread with the outcome. Without a store, at once.
void UploadPipeline::Impl::persist(WriteBatch batch, Store::Done done) {
    if (store) {
        store->submit(std::move(batch), std::move(done));
        return;
    }
    boost::asio::post(io, [done = std::move(done)] { done(""); });
}

UploadPipeline::UploadPipeline(boost::asio::io_context& io, PipelineConfig config,
                               ReadingPublisher& publisher, const Clock& clock, Logger& log,
                               Store* store)
    : impl_(std::make_shared<Impl>(io, std::move(config), publisher, clock, log, store)) {}

UploadPipeline::~UploadPipeline() = default;

void UploadPipeline::start() {
    impl_->start();
}
void UploadPipeline::shutdown(std::chrono::milliseconds budget) {
    impl_->shutdown();
    impl_->publisher.shutdown(budget);
}
void UploadPipeline::on_realtime(const RealtimeUpload& upload,
                                 std::chrono::system_clock::time_point received,
                                 HandlingDone done) {
    impl_->on_realtime(upload, received, std::move(done));
}
void UploadPipeline::on_raw(const std::string& ecu_id, std::string_view raw) {
    impl_->publisher.on_raw(ecu_id, raw);
}
void UploadPipeline::on_polled(const std::string& ecu_id, const PolledEcuFacts& facts,
                               std::shared_ptr<const TimeZone> zone) {
    impl_->on_polled(ecu_id, facts, std::move(zone));
}

} // namespace ecu2mqtt
