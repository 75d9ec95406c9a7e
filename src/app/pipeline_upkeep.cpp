#include "upload_pipeline_impl.hpp"

#include "ecu2mqtt/mqtt/ecu_state_payload.hpp"
#include "ecu2mqtt/mqtt/reading_codec.hpp"

#include <algorithm>

namespace ecu2mqtt {

void UploadPipeline::Impl::start() {
    load_state();
    publisher.start();
    tick();
}

void UploadPipeline::Impl::shutdown() {
    for (auto& [id, entry] : ecus)
        if (entry.unsaved)
            save(id, entry); // committed before the store closes
    tick_timer.cancel();
    keep_retry_timer.cancel();
}

// Keeps a reading that answers no upload (a midnight reset); published once committed.
void UploadPipeline::Impl::keep_reading(const std::string& ecu_id,
                                        std::vector<OutgoingMessage> batch) {
    const auto sequence = publisher.next_sequence();
    auto record = encode_reading(batch);
    const auto bytes = record.size();
    const auto now_s = unix_seconds(clock.now());
    WriteBatch write;
    write.put_reading(sequence, ecu_id, now_s, std::move(record));
    persist(std::move(write), [weak = weak_from_this(), ecu_id, sequence, bytes, now_s,
                               batch = std::move(batch)](const std::string& error) mutable {
        auto self = weak.lock();
        if (!self)
            return;
        if (!error.empty()) {
            self->log.error(
                "store_write_failed",
                {{"ecu", ecu_id},
                 {"error", error},
                 {"what", "today's energy reset"},
                 {"action",
                  "trying again in " + std::to_string(self->config.store_retry.count()) + " ms"}});
            self->keep_reading_later(ecu_id, std::move(batch));
            return;
        }
        self->publisher.reading_committed(sequence, bytes, now_s, std::move(batch));
    });
}

// Without it, today's energy would stay at yesterday's figure until the ECU's first upload
// of the day. An upload kept meanwhile carries a newer state, and this one is dropped.
void UploadPipeline::Impl::keep_reading_later(const std::string& ecu_id,
                                              std::vector<OutgoingMessage> batch) {
    unkept_resets[ecu_id] = std::move(batch);
    if (keep_retry_armed)
        return;
    keep_retry_armed = true;
    keep_retry_timer.expires_after(config.store_retry);
    keep_retry_timer.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
        auto self = weak.lock();
        if (!self || ec)
            return;
        self->keep_retry_armed = false;
        auto due = std::exchange(self->unkept_resets, {});
        for (auto& [ecu_id, batch] : due) {
            const auto entry = self->ecus.find(ecu_id);
            if (entry == self->ecus.end() || batch.empty() ||
                entry->second.live_state.dump() != batch.front().payload)
                continue; // forgotten, or superseded by a newer state
            self->keep_reading(ecu_id, std::move(batch));
        }
    });
}

// Clears everything of the ECU and its inverters: devices, states, availability, state file.
void UploadPipeline::Impl::forget_ecu(const std::string& id, const std::string& why) {
    const auto it = ecus.find(id);
    if (it == ecus.end())
        return;
    WriteBatch drop;
    publisher.forget_ecu(id, drop);
    auto waiting = std::move(it->second.waiting);
    ecus.erase(it);
    registry.forget(id);
    weak_panels.forget(id);
    if (config.on_ecu_forgotten)
        config.on_ecu_forgotten(id);
    // Cleared whether sent in this run or an earlier one; sent once, not kept.
    const auto& topics = publisher.topics();
    publisher.put_latest({weak_panels_topic(topics, id), "", true}, false);
    publisher.put_latest({weak_panel_discovery(topics, id, publisher.sw_version()).topic, "", true},
                         false);
    drop.drop_ecu_state(id);
    persist(std::move(drop), [weak = weak_from_this(), id](const std::string& error) {
        if (auto self = weak.lock(); self && !error.empty())
            self->log.warn("store_write_failed", {{"ecu", id}, {"error", error}});
    });
    log.warn("ecu_forgotten", {{"ecu", id}, {"reason", why}});
    for (auto& w : waiting) // answered as usual, no longer tracked
        w.done(UploadHandling{});
    publisher.publish_queued();
}

std::optional<PolledEcuFacts> UploadPipeline::polled_facts(const std::string& ecu_id) const {
    const auto it = impl_->ecus.find(ecu_id);
    if (it == impl_->ecus.end() || it->second.polled == PolledEcuFacts{})
        return std::nullopt;
    return it->second.polled;
}

// New facts from an ECU's port 8899: its time zone gives its day from now on; its state and
// discovery are published again when they add something. A failed poll never gets here.
void UploadPipeline::Impl::on_polled(const std::string& id, const PolledEcuFacts& facts,
                                     std::shared_ptr<const TimeZone> zone) {
    const auto it = ecus.find(id);
    if (it == ecus.end())
        return; // known only from its uploads: polled facts wait for its first
    auto& entry = it->second;
    if (zone) {
        const auto now_s = unix_seconds(clock.now());
        if (zone_agrees_with_uploads(*zone, now_s, offset_seconds(entry))) {
            entry.ledger.set_time_zone(std::move(zone));
        } else if (zones_refused[id] != zone->name()) {
            zones_refused[id] = zone->name();
            log.warn("time_zone_disagrees",
                     {{"ecu", id},
                      {"time_zone", zone->name()},
                      {"zone_offset_s", std::to_string(zone->utc_offset_at(now_s))},
                      {"learned_offset_s", std::to_string(*offset_seconds(entry))},
                      {"kept", entry.ledger.time_zone() ? entry.ledger.time_zone()->name()
                                                        : "learned clock offset"}});
        }
    }
    // The poller starts afresh after a restart: until a reply of this run lists inverters (one
    // that answers ECU info but not 0002/0030), the stored ones keep their entities, their
    // values going unknown once old, instead of vanishing from Home Assistant.
    PolledEcuFacts known = facts;
    if (entry.polled_inverters_stored) {
        bool complete = !facts.inverters.empty();
        for (const auto& [uid, stored] : entry.polled.inverters) {
            auto& now = known.inverters[uid];
            if (!now.signal_level_at) {
                now.signal_level = stored.signal_level;
                now.signal_level_at = stored.signal_level_at;
                complete = false;
            }
            if (!now.ac_voltage_at) {
                now.ac_voltage_v = stored.ac_voltage_v;
                now.ac_voltage_at = stored.ac_voltage_at;
                complete = false;
            }
        }
        entry.polled_inverters_stored = !complete; // this run's replies said it all
    }
    // Every answer refreshes when the values were polled; what shows is published again
    // only when it changed.
    const bool shown_alike = same_values(known, entry.polled);
    entry.polled = std::move(known);
    describe(id, entry);
    // Kept with its state, so that a restart announces the polled entities again. Saved
    // after an upload being committed, which would otherwise overwrite it.
    if (entry.committing)
        entry.polled_unsaved = true;
    else
        save(id, entry);
    if (shown_alike)
        return;
    publisher.announce(id);
    auto state = live_state_payload(id, entry);
    if (!state.is_null()) {
        entry.live_state = state;
        keep_reading(id, {{publisher.topics().ecu_state(id), state.dump(), true}});
    }
    publisher.publish_queued();
}

// Periodic, per ECU: its midnight resets today's energy; silence makes it offline; inverters
// unseen for long are forgotten (their device and topics cleared); old gaps expire.
void UploadPipeline::Impl::tick() {
    const auto now = clock.now();
    auto ticks = registry.tick(now, busy_check());
    for (const auto& [id, t, changed] : ticks.ecus) {
        auto& entry = ecus.at(id);
        log_events(id, t.events);
        if (!t.forgotten_inverters.empty())
            describe(id, entry);
        if (t.went_offline) {
            log.warn("ecu_offline",
                     {{"ecu", id}, {"silent_for_s", std::to_string(config.ecu_timeout.count())}});
            publisher.set_online(id, false);
        }
        WriteBatch clears; // with the ledger's change, in one transaction
        for (const auto& uid : t.forgotten_inverters) {
            publisher.forget_inverter(id, uid, clears);
            log.info("inverter_forgotten",
                     {{"ecu", id},
                      {"inverter", uid},
                      {"action", "cleared its discovery config, state and availability"}});
        }
        if (t.today_reset_to) {
            auto state = live_state_payload(id, entry);
            if (!state.is_null()) {
                entry.live_state = state;
                keep_reading(id, {{publisher.topics().ecu_state(id), state.dump(), true}});
            }
        }
        // A gap opened while the disk was full lives only in memory until this succeeds.
        if (changed || entry.unsaved || !clears.empty())
            save(id, entry, std::move(clears));
    }
    prune_history(now);
    // An ECU silent as long as an inverter is forgotten after goes too (a replaced ECU, or
    // an id someone made up).
    for (const auto& id : ticks.silent)
        forget_ecu(id, "silent for " +
                           std::to_string(config.forget_inverter_after.count() / 86400) + " days");
    publisher.refresh_bridge_info();
    publisher.publish_queued();
    tick_timer.expires_after(std::clamp<std::chrono::steady_clock::duration>(
        config.ecu_timeout / 4, std::chrono::milliseconds(250), std::chrono::seconds(10)));
    tick_timer.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
        if (auto self = weak.lock(); self && !ec)
            self->tick();
    });
}

// Once an hour: power points and daily energy past the retention leave the store.
void UploadPipeline::Impl::prune_history(std::chrono::system_clock::time_point now) {
    if (!store || (last_prune && now - *last_prune < std::chrono::hours(1)))
        return;
    last_prune = now;
    const auto first_kept =
        add_seconds(clock.local(now), -std::int64_t(config.history_days) * 86400);
    WriteBatch prune;
    prune.prune_history(format_iso(date_of(first_kept)));
    persist(std::move(prune), [weak = weak_from_this()](const std::string& error) {
        if (auto self = weak.lock(); self && !error.empty())
            self->log.warn("store_write_failed",
                           {{"error", error}, {"what", "pruning the history"}});
    });
}

void UploadPipeline::Impl::save(const std::string& id, EcuEntry& entry, WriteBatch write) {
    if (!store)
        return;
    entry.polled_unsaved = false;
    write.put_ecu_state(id, state_record(id, entry.ledger.state(), entry.live_state, entry.polled));
    persist(std::move(write), [weak = weak_from_this(), id](const std::string& error) {
        if (auto self = weak.lock())
            self->state_saved(id, error);
    });
}

void UploadPipeline::Impl::state_saved(const std::string& id, const std::string& error) {
    const auto it = ecus.find(id);
    if (it == ecus.end())
        return;
    EcuEntry& entry = it->second;
    if (!error.empty() && !entry.unsaved) // logged once per outage, retried on every tick
        log.error("state_not_saved",
                  {{"ecu", id}, {"error", error}, {"action", "retrying every few seconds"}});
    else if (error.empty() && entry.unsaved)
        log.info("state_saved", {{"ecu", id}, {"after", "an earlier failure"}});
    entry.unsaved = !error.empty();
}

void UploadPipeline::Impl::load_state() {
    if (!store)
        return;
    for (const auto& [id, text] : store->ecu_states()) {
        try {
            // The offline timer starts now: an ECU silent since before the restart goes
            // offline one timeout from here.
            auto j = nlohmann::json::parse(text);
            auto kept = nlohmann::json::array();
            for (const auto& [time, fingerprint] : store->kept_readings(id))
                kept.push_back({time, fingerprint});
            j["kept"] = std::move(kept);
            EcuLedger ledger =
                EcuLedger::from_json(j, registry.config().ledger_config(), clock.now());
            auto live_state = j.value("live_state", nlohmann::json());
            const std::string ecu_id = ledger.ecu_id(); // before the ledger moves
            ecus.erase(ecu_id);
            EcuEntry loaded(registry.insert(std::move(ledger)), std::move(live_state));
            if (config.polling && j.contains("polled")) { // else its entities go, as they should
                loaded.polled = polled_facts_from_record(j["polled"]);
                loaded.polled_inverters_stored = !loaded.polled.inverters.empty();
            }
            load_weak_panel_moments(ecu_id); // before describe: its inverters' entities
            const auto& entry = ecus.emplace(ecu_id, std::move(loaded)).first->second;
            describe(ecu_id, entry);
            log.info("state_loaded", {{"ecu", id}});
        } catch (const nlohmann::json::exception& e) {
            // Starting afresh for that ECU beats not starting: its lifetime is re-learned
            // from the next upload, and the broken record is overwritten then.
            log.error("state_unreadable",
                      {{"ecu", id}, {"error", e.what()}, {"action", "starting it afresh"}});
        }
    }
}

// The ECU's channel powers of its newest day, kept before the restart: without them the hint
// would wait for a whole new sunny stretch.
void UploadPipeline::Impl::load_weak_panel_moments(const std::string& id) {
    std::vector<ChannelMoment> moments;
    std::size_t unreadable = 0;
    for (const auto& [time, powers] : store->channel_powers(id)) {
        if (auto moment = decode_channel_powers(time, powers))
            moments.push_back(std::move(*moment));
        else
            ++unreadable;
    }
    if (unreadable)
        log.warn("weak_panel_moments_unreadable", {{"ecu", id},
                                                   {"unreadable", std::to_string(unreadable)},
                                                   {"action", "left out of the weak-panel hint"}});
    weak_panels.seed(id, std::move(moments));
}

std::vector<EcuView> UploadPipeline::ecus() const {
    std::vector<EcuView> views;
    for (auto& ecu : impl_->registry.snapshot()) {
        std::optional<EcuView::Live> live;
        if (ecu.live)
            live = EcuView::Live{format_iso(ecu.live->timestamp), ecu.live->received_s,
                                 ecu.live->power_w, ecu.live->lifetime_kwh};
        auto weak = impl_->weak_panels.weak(ecu.ecu_id);
        views.push_back({std::move(ecu.ecu_id), ecu.today_kwh, ecu.clock_offset_s, ecu.online,
                         std::move(ecu.model), std::move(live), std::move(weak),
                         std::move(ecu.time_zone), std::move(ecu.inverters)});
    }
    return views;
}

} // namespace ecu2mqtt
