#include "ecu2mqtt/mqtt/mqtt_publisher.hpp"

#include "ecu2mqtt/ledger/ecu_registry.hpp"
#include "ecu2mqtt/mqtt/announced_devices.hpp"
#include "ecu2mqtt/mqtt/bridge_info.hpp"
#include "ecu2mqtt/mqtt/ecu_state_payload.hpp"
#include "ecu2mqtt/mqtt/ha_discovery.hpp"
#include "ecu2mqtt/mqtt/outbox.hpp"
#include "ecu2mqtt/mqtt/polled_facts.hpp"
#include "ecu2mqtt/mqtt/readback.hpp"
#include "ecu2mqtt/mqtt/reading_codec.hpp"
#include "ecu2mqtt/mqtt/superseded_readings.hpp"
#include "ecu2mqtt/mqtt/weak_panel_watch.hpp"
#include "ecu2mqtt/net/tls_probe.hpp"
#include "ecu2mqtt/store/store.hpp"
#include "paho_glue.hpp"

#include "ecu2mqtt/net/asio.hpp"
#include <algorithm>
#include <cstring>
#include <deque>
#include <limits>
#include <map>
#include <mqtt/async_client.h>
#include <set>

namespace ecu2mqtt {

namespace asio = boost::asio;
using Steady = std::chrono::steady_clock;

namespace {

constexpr int kQos = 1;
constexpr std::chrono::seconds kMaxBackoff{60};

// An upload waiting for the one before it, of the same ECU, to be committed.
struct WaitingUpload {
    RealtimeUpload upload;
    std::chrono::system_clock::time_point received;
    ReadingSink::HandlingDone done;
};

// What the publisher keeps per ECU besides its ledger: the newest live state payload, which a
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

    // An upload of it is being decided or written: it must not be forgotten meanwhile, or the
    // commit would land after its state was dropped (and a first upload has no state yet).
    bool busy() const { return committing || !waiting.empty(); }
};

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

RegistryConfig registry_config(const PublisherConfig& c) {
    return {c.max_ecus, c.max_inverters_per_ecu, c.ecu_timeout, c.forget_inverter_after,
            c.gap_expiry};
}

LogLevel level_of(EventLevel level) {
    return level == EventLevel::Warn ? LogLevel::Warn : LogLevel::Info;
}

std::int64_t unix_seconds(std::chrono::system_clock::time_point t) {
    return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

} // namespace

struct MqttPublisher::Impl : std::enable_shared_from_this<MqttPublisher::Impl> {
    Impl(asio::io_context& io, PublisherConfig cfg, const Clock& clock, Logger& log, Store* store)
        : io(io), config(std::move(cfg)), clock(clock), log(log), store(store),
          registry(registry_config(config)), outbox(config.max_in_flight), announced(config.topics),
          readback(log, config.url, config.topics), retry_timer(io), publish_retry_timer(io),
          tick_timer(io), audit_timer(io), retained_check_timer(io), keep_retry_timer(io) {}

    asio::io_context& io;
    PublisherConfig config;
    const Clock& clock;
    Logger& log;
    // Declared before the client: the client's threads may still report to them while it is
    // being destroyed.
    ConnectListener connect_listener;
    DeliveryListener delivery_listener;
    SubscribeListener subscribe_listener;
    std::unique_ptr<mqtt::async_client> client;
    mqtt::connect_options connect_options;
    Store* store; // null: nothing survives a restart
    // The readings committed to the store and not acknowledged yet, oldest first.
    std::deque<PendingSummary> pending;
    std::uintmax_t pending_bytes = 0;
    std::uint64_t dropped = 0;       // readings dropped because the store's share was full
    std::uint64_t last_sequence = 0; // the newest sequence given to a reading
    EcuRegistry registry;
    Outbox outbox;
    AnnouncedDevices announced;
    Readback readback;
    bool readback_heard = false; // a message of the current read-back came
    std::map<std::uint64_t, mqtt::delivery_token_ptr> tokens; // outbox id -> token, in flight
    std::uint64_t loaded_up_to = 0; // the newest stored reading handed to the outbox
    std::optional<std::chrono::system_clock::time_point> last_prune;
    // Stored readings wait until the broker's receipt is known (the start-up audit), so that
    // none it already has is sent again.
    bool readings_released = false;
    std::uint64_t delivered_up_to = 0; // the broker's receipt, for this database
    std::string broker_receipt_payload;
    // Retained state payloads the broker had at start, to find how much of the reading after
    // the receipt it already took; and how many of that reading's messages to leave out.
    std::map<std::string, std::string> broker_states;
    std::map<std::uint64_t, std::size_t> already_sent;
    std::string audit_nonce;
    asio::steady_timer retry_timer;         // reconnect
    asio::steady_timer publish_retry_timer; // a refused publish
    asio::steady_timer tick_timer;
    asio::steady_timer audit_timer;
    asio::steady_timer retained_check_timer;
    asio::steady_timer keep_retry_timer; // readings that answer no upload, not written yet
    bool keep_retry_armed = false;
    std::map<std::string, std::vector<OutgoingMessage>> unkept_resets; // by ECU
    std::chrono::seconds backoff{1};
    bool is_connected = false;
    bool connecting = false;
    bool tls_probe_running = false;
    bool shutting_down = false;
    bool publish_retry_armed = false;
    int failures_in_a_row = 0;
    std::uint64_t published = 0;
    std::uint64_t publish_failures = 0;
    std::string last_error;
    std::map<std::string, EcuEntry> ecus;
    nlohmann::json bridge_facts; // null until told: no bridge/info
    WeakPanelWatch weak_panels;
    // Per ECU, the last polled zone refused for disagreeing with its uploads (warned once).
    std::map<std::string, std::string> zones_refused;
    std::string bridge_info_sent;
    // Refusals beyond max_ecus: a flood of made-up ids must not flood the log too.
    WarningBudget refusal_warnings{10, std::chrono::minutes(1)};
    WarningBudget held_inverter_warnings{10, std::chrono::minutes(1)};
    // Discovery lifecycle: our retained device configs as the broker has them (component ids),
    // collected at start; and whether the start-up audit is done.
    std::map<std::string, std::set<std::string>> retained_devices;
    enum class Audit { NotStarted, Collecting, Done } audit = Audit::NotStarted;
    // After a reconnect: whether the broker still holds our retained messages, told by the
    // retained copy of the receipt arriving before the echo of `retained_check_nonce`.
    bool checking_retained = false;
    std::optional<std::uint64_t> broker_receipt; // what the broker's copy names, if ours
    std::string retained_check_nonce;

    // Hands work reported on the MQTT client's threads to the io thread; dropped if the publisher
    // is gone by then. Takes the weak pointer by value: nothing here touches `this`.
    template <class Fn>
    static void relay(asio::io_context& io, const std::weak_ptr<Impl>& weak, Fn fn) {
        asio::post(io, [weak, fn = std::move(fn)]() mutable {
            if (auto self = weak.lock())
                fn(*self);
        });
    }

    void start() {
        // Paho's own buffer must hold our whole window; its automatic reconnect stays off, so
        // that only one reconnect loop (ours) runs.
        const auto create = mqtt::create_options_builder()
                                .max_buffered_messages(static_cast<int>(config.max_in_flight) + 16)
                                .finalize();
        client = std::make_unique<mqtt::async_client>(paho_server_uri(config.url), config.client_id,
                                                      create, nullptr);
        auto builder = mqtt::connect_options_builder()
                           .clean_session(true)
                           .keep_alive_interval(std::chrono::seconds(30))
                           .connect_timeout(std::chrono::seconds(5))
                           .max_inflight(static_cast<int>(config.max_in_flight) + 16)
                           .will(mqtt::message(config.topics.bridge_state(), kOffline, kQos, true));
        if (!config.user.empty())
            builder.user_name(config.user);
        if (!config.password.empty())
            builder.password(config.password);
        connect_options = builder.finalize();
        if (config.url.starts_with("mqtts://")) {
            mqtt::ssl_options ssl;
            if (!config.ca_file.empty())
                ssl.set_trust_store(config.ca_file);
            ssl.set_verify(true); // the certificate must be issued for the broker's host name
            connect_options.set_ssl(ssl);
        }
        const std::weak_ptr<Impl> weak = weak_from_this();
        client->set_connected_handler([&io = io, weak](const std::string&) {
            relay(io, weak, [](Impl& self) { self.on_connected(); });
        });
        client->set_connection_lost_handler([&io = io, weak](const std::string& cause) {
            relay(io, weak, [cause](Impl& self) { self.on_connection_lost(cause); });
        });
        client->set_message_callback([&io = io, weak](mqtt::const_message_ptr msg) {
            relay(io, weak, [msg](Impl& self) { self.on_message(*msg); });
        });
        connect_listener.on_fail = [&io = io, weak](int rc) {
            relay(io, weak, [rc](Impl& self) { self.on_connect_failed(rc); });
        };
        delivery_listener.on_done = [&io = io, weak](std::uint64_t id, bool ok) {
            relay(io, weak, [id, ok](Impl& self) { self.on_delivery(id, ok); });
        };
        subscribe_listener.on_refused = [&io = io, weak](const std::string& filter) {
            relay(io, weak, [filter](Impl& self) { self.readback_refused(filter); });
        };
        outbox.put_latest({config.topics.bridge_state(), kOnline, true});
        load_state();
        load_pending();
        load_announced();
        log.info("mqtt_connecting", {{"url", config.url},
                                     {"client_id", config.client_id},
                                     {"user", config.user.empty() ? "(none)" : config.user}});
        connect();
        tick();
    }

    void load_pending() {
        if (!store)
            return;
        for (const auto& row : store->pending_summary()) {
            pending.push_back(row);
            pending_bytes += row.bytes;
        }
        last_sequence = store->last_sequence();
        if (!pending.empty())
            log.info("pending_readings_loaded", {{"readings", std::to_string(pending.size())},
                                                 {"bytes", std::to_string(pending_bytes)}});
        refill();
    }

    // What was announced and is no longer wanted is cleared from the store's record, whatever
    // the broker hands back; clears not yet at the broker go out again, and the stored readings
    // leave their topics out (a forgotten inverter's state is not published again).
    void load_announced() {
        if (!store)
            return;
        announced.load(store->announced_devices(), store->pending_clears());
        std::map<std::string, std::vector<std::string>> known; // ECU -> its inverters
        for (const auto& [id, entry] : ecus)
            for (auto& uids = known[id];
                 const auto& [uid, inverter] : entry.ledger.state().inverters)
                uids.push_back(uid);
        WriteBatch write;
        const auto due = announced.at_start(known, config.discovery, last_sequence, write);
        for (const auto& clear : due)
            outbox.clear_topic(clear.topic, clear.readings_up_to);
        if (!due.empty())
            log.info("announced_topics_cleared",
                     {{"topics", std::to_string(due.size())}, {"reason", "no longer known"}});
        persist_logged(std::move(write), "recording clears");
    }

    // Memory holds at most kReadingsInMemory readings; the rest wait in the store and are read
    // in order as the broker acknowledges the ones before.
    static constexpr std::size_t kReadingsInMemory = 128;
    static constexpr std::size_t kMaxWaitingPerEcu = 8;
    // Retained states read at start, at most: max ECUs x (1 + max inverters) by default.
    static constexpr std::size_t kMaxAuditedStates = 16 * 129;

    void refill() {
        while (store && readings_released && !pending.empty() &&
               outbox.pending_readings() < kReadingsInMemory &&
               loaded_up_to < pending.back().sequence) {
            const auto room = kReadingsInMemory - outbox.pending_readings();
            std::vector<PendingReading> rows;
            try {
                rows = store->pending_after(loaded_up_to, pending.back().sequence, room);
            } catch (const DatabaseError& e) {
                log.error("store_read_failed", {{"error", e.what()}, {"action", "retried later"}});
                return;
            }
            if (rows.empty())
                return;
            for (auto& row : rows) {
                loaded_up_to = row.sequence;
                if (!is_pending(row.sequence))
                    continue; // its removal is not committed yet
                auto messages = decode_reading(row.messages);
                if (!messages) {
                    log.error("pending_reading_lost",
                              {{"ecu", row.ecu_id},
                               {"sequence", std::to_string(row.sequence)},
                               {"error", "its stored messages cannot be read"}});
                    forget_pending(row.sequence);
                    continue;
                }
                to_outbox(row.sequence, std::move(*messages));
            }
        }
    }

    // A reading's messages, then the receipt that says the broker has all of them. The broker
    // gets them in order on one connection, so a receipt it has vouches for every message before
    // it; after a crash, the readings it names are not sent twice.
    void to_outbox(std::uint64_t sequence, std::vector<OutgoingMessage> messages) {
        if (const auto sent = already_sent.find(sequence); sent != already_sent.end()) {
            messages.erase(messages.begin(),
                           messages.begin() + static_cast<std::ptrdiff_t>(
                                                  std::min(sent->second, messages.size())));
            already_sent.erase(sent);
        }
        if (store)
            messages.push_back(
                {config.topics.bridge_delivered(),
                 nlohmann::json{{"database", store->database_id()}, {"sequence", sequence}}.dump(),
                 true});
        outbox.put_reading(sequence, std::move(messages));
    }

    // At start, once the broker's receipt is known: readings it already has leave the store,
    // the rest go out.
    void release_readings() {
        if (readings_released)
            return;
        readings_released = true;
        if (delivered_up_to > last_sequence) {
            // The broker has readings this database never numbered: it was restored from a
            // backup or copied. Its stored readings go out again (a duplicate beats a loss), and
            // numbering continues above the receipt, so that the next one is not mistaken either.
            log.warn("receipt_ahead_of_database",
                     {{"receipt", std::to_string(delivered_up_to)},
                      {"database_last", std::to_string(last_sequence)},
                      {"reason", "the database was restored from a backup or copied"},
                      {"action", "sending its stored readings again"}});
            last_sequence = delivered_up_to;
            delivered_up_to = 0;
        }
        std::size_t delivered = 0;
        while (!pending.empty() && pending.front().sequence <= delivered_up_to) {
            forget_pending(pending.front().sequence);
            ++delivered;
        }
        if (delivered > 0)
            log.info("readings_already_delivered", {{"readings", std::to_string(delivered)},
                                                    {"up_to", std::to_string(delivered_up_to)},
                                                    {"action", "not sent again"}});
        find_partly_delivered();
        remember_what_the_broker_holds();
        broker_states.clear();
        refill();
        pump();
    }

    // Our states the broker holds at start are what to give back should it lose them later
    // (a restart without persistence); only of ECUs and inverters still known, so that a
    // forgotten one stays cleared.
    void remember_what_the_broker_holds() {
        const auto remember = [&](const std::string& topic) {
            if (const auto copy = broker_states.find(topic); copy != broker_states.end())
                outbox.remember_held(topic, copy->second, 0, 0);
        };
        for (const auto& [id, entry] : ecus) {
            remember(config.topics.ecu_state(id));
            for (const auto& [uid, inverter] : entry.ledger.state().inverters)
                remember(config.topics.inverter_state(id, uid));
        }
        if (delivered_up_to > 0 && !broker_receipt_payload.empty()) // given back after the rest
            outbox.remember_held(config.topics.bridge_delivered(), broker_receipt_payload,
                                 delivered_up_to, std::numeric_limits<std::size_t>::max());
    }

    // The broker takes our messages in order, and a reading's receipt comes last: whatever it
    // took beyond the receipt is a first part of the next reading, never more. That part is
    // found by the retained copies of its state messages (each names its own timestamp), and
    // is not sent again.
    void find_partly_delivered() {
        if (!store || pending.empty() || broker_states.empty())
            return;
        const auto sequence = pending.front().sequence;
        std::vector<PendingReading> rows;
        try {
            rows = store->pending_after(sequence - 1, sequence, 1);
        } catch (const DatabaseError& e) {
            log.warn("store_read_failed", {{"error", e.what()}});
            return;
        }
        if (rows.empty())
            return;
        const auto messages = decode_reading(rows.front().messages);
        if (!messages)
            return;
        std::size_t taken = 0;
        for (std::size_t i = 0; i < messages->size(); ++i) {
            const auto& m = (*messages)[i];
            const auto copy = broker_states.find(m.topic);
            if (m.retain && copy != broker_states.end() && copy->second == m.payload)
                taken = i + 1;
        }
        if (taken == 0)
            return;
        already_sent[sequence] = taken;
        log.info("reading_partly_delivered", {{"ecu", rows.front().ecu_id},
                                              {"sequence", std::to_string(sequence)},
                                              {"messages_already_at_broker", std::to_string(taken)},
                                              {"of", std::to_string(messages->size())},
                                              {"action", "sending the rest"}});
    }

    bool is_pending(std::uint64_t sequence) const {
        const auto it = std::lower_bound(
            pending.begin(), pending.end(), sequence,
            [](const PendingSummary& p, std::uint64_t s) { return p.sequence < s; });
        return it != pending.end() && it->sequence == sequence;
    }

    // The reading is no longer wanted (acknowledged, dropped or unreadable): out of the store.
    void forget_pending(std::uint64_t sequence) {
        const auto it = std::find_if(pending.begin(), pending.end(),
                                     [&](const auto& p) { return p.sequence == sequence; });
        if (it == pending.end())
            return;
        pending_bytes -= std::min<std::uintmax_t>(it->bytes, pending_bytes);
        pending.erase(it);
        WriteBatch drop;
        drop.drop_reading(sequence);
        persist_logged(std::move(drop), "removing an acknowledged reading"); // else sent again
    }

    // A write whose failure only costs a repeat after a restart: logged, not retried.
    void persist_logged(WriteBatch batch, std::string what) {
        if (batch.empty())
            return;
        persist(std::move(batch), [weak = weak_from_this(), what](const std::string& error) {
            if (auto self = weak.lock(); self && !error.empty())
                self->log.warn("store_write_failed", {{"error", error}, {"what", what}});
        });
    }

    // Commits `batch`; `done` runs on the io thread with the outcome. Without a store, at once.
    void persist(WriteBatch batch, Store::Done done) {
        if (store) {
            store->submit(std::move(batch), std::move(done));
            return;
        }
        asio::post(io, [done = std::move(done)] { done(""); });
    }

    // A reading is committed: it joins the queue for the broker (straight from memory when
    // nothing older waits in the store only), and the oldest go when the store's share is full.
    void reading_kept(std::uint64_t sequence, std::size_t bytes, std::int64_t kept_at_s,
                      std::vector<OutgoingMessage> batch) {
        const bool older_waiting_in_store =
            !pending.empty() && pending.back().sequence > loaded_up_to;
        pending.push_back({sequence, bytes, kept_at_s});
        pending_bytes += bytes;
        if (!store || (readings_released && !older_waiting_in_store &&
                       outbox.pending_readings() < kReadingsInMemory)) {
            loaded_up_to = sequence;
            to_outbox(sequence, std::move(batch));
        } else {
            refill();
        }
        while (pending_bytes > config.spool_max_bytes && pending.size() > 1) {
            ++dropped;
            log.warn("pending_readings_full_dropped_oldest",
                     {{"ecu", ""},
                      {"dropped_total", std::to_string(dropped)},
                      {"limit_bytes", std::to_string(config.spool_max_bytes)}});
            forget_pending(pending.front().sequence);
        }
        pump();
    }

    // Keeps a reading that answers no upload (a midnight reset); published once committed.
    void keep_reading(const std::string& ecu_id, std::vector<OutgoingMessage> batch) {
        const auto sequence = ++last_sequence;
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
                     {"action", "trying again in " +
                                    std::to_string(self->config.store_retry.count()) + " ms"}});
                self->keep_reading_later(ecu_id, std::move(batch));
                return;
            }
            self->reading_kept(sequence, bytes, now_s, std::move(batch));
        });
    }

    // Without it, today's energy would stay at yesterday's figure until the ECU's first upload
    // of the day. An upload kept meanwhile carries a newer state, and this one is dropped.
    void keep_reading_later(const std::string& ecu_id, std::vector<OutgoingMessage> batch) {
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

    void connect() {
        if (shutting_down || is_connected || connecting)
            return;
        connecting = true;
        try {
            client->connect(connect_options, nullptr, connect_listener);
        } catch (const mqtt::exception& e) {
            connecting = false;
            last_error = e.what();
            log.error("mqtt_connect_failed", {{"url", config.url}, {"error", e.what()}});
            schedule_reconnect();
        }
    }

    void schedule_reconnect() {
        if (shutting_down)
            return;
        retry_timer.expires_after(backoff);
        backoff = std::min(backoff * 2, kMaxBackoff);
        retry_timer.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
            if (auto self = weak.lock(); self && !ec)
                self->connect();
        });
    }

    void on_connect_failed(int rc) {
        connecting = false;
        if (shutting_down || is_connected)
            return;
        ++failures_in_a_row;
        last_error = connack_reason(rc);
        // The first failure and then every tenth is worth a line at error level.
        const auto level = (failures_in_a_row == 1 || failures_in_a_row % 10 == 0)
                               ? LogLevel::Error
                               : LogLevel::Debug;
        log.log(level, "mqtt_connect_failed",
                {{"url", config.url},
                 {"reason", last_error},
                 {"attempt", std::to_string(failures_in_a_row)},
                 {"retry_in_s", std::to_string(backoff.count())}});
        if (level == LogLevel::Error)
            explain_tls_failure();
        schedule_reconnect();
    }

    // The MQTT client says only that the connection failed: for mqtts://, one handshake of our
    // own names why (an unknown CA, a host name mismatch, an expired certificate).
    void explain_tls_failure() {
        const auto target = tls_target_of(config.url, config.ca_file);
        if (!target || tls_probe_running)
            return;
        tls_probe_running = true;
        diagnose_tls(
            io.get_executor(), *target, std::chrono::seconds(5),
            [weak = weak_from_this()](const std::string& reason) {
                auto self = weak.lock();
                if (!self)
                    return;
                self->tls_probe_running = false;
                if (reason.empty() || self->is_connected)
                    return;
                self->last_error = "TLS: " + reason;
                self->log.error("mqtt_tls_failed", {{"url", self->config.url}, {"reason", reason}});
            });
    }

    void on_connected() {
        connecting = false;
        if (shutting_down)
            return;
        is_connected = true;
        failures_in_a_row = 0;
        backoff = std::chrono::seconds(1);
        log.info("mqtt_connected", {{"url", config.url}});
        outbox.connection_reset(); // everything unacknowledged goes again, latest values too
        tokens.clear();
        try {
            client->subscribe(config.topics.ha_status(), kQos);
        } catch (const mqtt::exception& e) {
            log.warn("mqtt_subscribe_failed",
                     {{"topic", config.topics.ha_status()}, {"error", e.what()}});
        }
        start_discovery_audit();
        check_broker_kept_retained();
        pump();
    }

    void on_connection_lost(const std::string& cause) {
        if (shutting_down)
            return;
        const bool was_connected = is_connected;
        is_connected = false;
        connecting = false;
        last_error = cause.empty() ? "connection lost" : cause;
        tokens.clear();
        outbox.connection_reset();
        if (checking_retained) { // asked again on the next connection, if still needed
            checking_retained = false;
            retained_check_timer.cancel();
            outbox.hold_readings(false);
        }
        if (was_connected)
            log.warn("mqtt_connection_lost", {{"url", config.url},
                                              {"cause", last_error},
                                              {"pending", std::to_string(pending.size())}});
        schedule_reconnect();
    }

    void on_message(const mqtt::message& msg) {
        const std::string& topic = msg.get_topic();
        if (topic == config.topics.ha_status()) {
            if (msg.get_payload_str() == kOnline) {
                log.info("home_assistant_online", {{"action", "sending discovery again"}});
                outbox.resend_latest(config.topics.discovery_prefix + "/");
                outbox.resend_latest(config.topics.base + "/");
                pump();
            }
            return;
        }
        readback_heard = readback_heard || checking_retained || audit == Audit::Collecting;
        if (checking_retained) {
            if (topic == config.topics.bridge_delivered() && msg.is_retained()) {
                // Another database's or an unreadable one is not ours: as good as none.
                broker_receipt = receipt_sequence(msg.get_payload_str());
                return;
            }
            if (topic == config.topics.bridge_audit() &&
                msg.get_payload_str() == retained_check_nonce) {
                readback.echoed();
                finish_retained_check();
                return;
            }
            if (msg.is_retained() && is_our_state_topic(config.topics, topic)) {
                note_broker_state(topic, msg.get_payload_str());
                return;
            }
        }
        if (audit == Audit::Collecting && topic == config.topics.bridge_delivered()) {
            note_receipt(msg.get_payload_str());
            return;
        }
        if (audit == Audit::Collecting && msg.is_retained() &&
            is_our_state_topic(config.topics, topic)) {
            note_broker_state(topic, msg.get_payload_str());
            return;
        }
        if (audit == Audit::Collecting && topic == config.topics.bridge_audit()) {
            if (msg.get_payload_str() == audit_nonce) { // every retained message is in
                readback.echoed();
                audit_timer.cancel();
                finish_discovery_audit();
            }
            return;
        }
        if (audit == Audit::Collecting) {
            if (const auto key = our_device_key(config.topics, topic)) {
                if (msg.get_payload_str().empty()) {
                    retained_devices.erase(topic);
                    return;
                }
                try {
                    const auto payload = nlohmann::json::parse(msg.get_payload_str());
                    if (announced_by_another_bridge(config.topics, payload)) {
                        log.debug("discovery_of_another_bridge", {{"topic", topic}});
                        return;
                    }
                    retained_devices[topic] = component_ids(payload);
                } catch (const nlohmann::json::exception&) {
                    retained_devices[topic] = {};
                }
            }
        }
    }

    // At start: collect our retained device configs, then clear those no longer wanted (all of
    // them when discovery is off), and remember the components of the rest so that components
    // that went away are removed from their device.
    // The broker's retained receipt: which readings of this database it already has.
    void note_receipt(const std::string& payload) {
        if (const auto sequence = receipt_sequence(payload)) {
            delivered_up_to = *sequence;
            broker_receipt_payload = payload;
        }
    }

    // The reading a receipt names, if the receipt is of this database.
    std::optional<std::uint64_t> receipt_sequence(const std::string& payload) {
        try {
            const auto receipt = nlohmann::json::parse(payload);
            if (store && receipt.at("database") == store->database_id()) {
                const auto& sequence = receipt.at("sequence");
                if (!sequence.is_number_unsigned())
                    throw std::invalid_argument("the sequence is not a count");
                return sequence.get<std::uint64_t>();
            }
        } catch (const std::exception& e) {
            log.warn("receipt_unreadable",
                     {{"topic", config.topics.bridge_delivered()}, {"error", e.what()}});
        }
        return std::nullopt;
    }

    void note_broker_state(const std::string& topic, std::string payload) {
        if (broker_states.size() < kMaxAuditedStates)
            broker_states[topic] = std::move(payload);
    }

    // Subscribes to our retained configs and receipt, then echoes a nonce to ourselves: the
    // broker sends retained messages when it takes a subscription, so once the echo is back, all
    // of them are in. A timer bounds the wait if the echo never comes.
    void start_discovery_audit() {
        if (audit != Audit::NotStarted)
            return;
        audit = Audit::Collecting;
        audit_nonce = std::to_string(reinterpret_cast<std::uintptr_t>(this)) + "-" +
                      std::to_string(Steady::now().time_since_epoch().count());
        readback_heard = false;
        try {
            for (const auto& filter : Readback::audit_filters(config.topics))
                client->subscribe(filter, kQos, nullptr, subscribe_listener);
            client->publish(config.topics.bridge_audit(), audit_nonce.data(), audit_nonce.size(),
                            kQos, false);
        } catch (const mqtt::exception& e) {
            log.warn("mqtt_subscribe_failed", {{"error", e.what()}});
        }
        audit_timer.expires_after(config.discovery_audit_wait);
        audit_timer.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
            if (auto self = weak.lock(); self && !ec) {
                self->readback.timed_out(self->readback_heard);
                self->finish_discovery_audit();
            }
        });
    }

    void finish_discovery_audit() {
        if (audit != Audit::Collecting)
            return;
        audit = Audit::Done;
        try {
            if (is_connected)
                for (const auto& filter : Readback::audit_filters(config.topics))
                    client->unsubscribe(filter);
        } catch (const mqtt::exception& e) {
            log.debug("mqtt_unsubscribe_failed", {{"error", e.what()}});
        }
        log.debug("startup_audit_done",
                  {{"retained_devices", std::to_string(retained_devices.size())},
                   {"receipt", std::to_string(delivered_up_to)}});
        release_readings();
        std::set<std::string> wanted;
        if (config.discovery)
            for (const auto& [id, entry] : ecus) {
                wanted.insert(device_discovery_topic(config.topics, id));
                for (const auto& [uid, inv] : entry.ledger.state().inverters)
                    wanted.insert(device_discovery_topic(config.topics, uid));
            }
        std::vector<std::string> unwanted;
        for (const auto& [topic, components] : retained_devices)
            if (!wanted.contains(topic))
                unwanted.push_back(topic);
        WriteBatch write; // the read-back adds to what the store names
        for (const auto& topic : unwanted) {
            clear_retained(topic);
            announced.clear(topic, "", last_sequence, write);
        }
        persist_logged(std::move(write), "recording clears");
        const auto cleared = unwanted.size();
        if (cleared > 0)
            log.info("discovery_cleared",
                     {{"devices", std::to_string(cleared)},
                      {"reason", config.discovery ? "no longer known" : "discovery is off"}});
        // Configs already queued may name components the broker's copy has and ours lacks.
        for (const auto& [id, entry] : ecus)
            publish_discovery(id, entry);
        pump();
    }

    // After a reconnect the broker's copy of our receipt tells two things:
    //  - none of ours, or one older than the newest it acknowledged: the broker was restarted
    //    without persistence (or before saving it) and lost retained messages. The last states
    //    would stay missing or old until each ECU uploads again (at night, until morning), so
    //    they are given back; readings wait until the broker has them, so that none lands
    //    after a newer one.
    //  - one naming reading N: every reading up to N reached the broker although the lost
    //    connection took their acknowledgements; sending them again would make their topics go
    //    back for a moment, so they complete as they are. Only readings sent whole on the lost
    //    connection can complete this way: a receipt planted by another client cannot make
    //    unsent readings vanish.
    // The receipt goes out only after a reading's messages, and readings wait during this
    // check, so a connection lost just after the broker's restart cannot have put it back. The
    // broker hands its copy out on a new subscription, before the echo of a nonce published
    // after subscribing.
    void check_broker_kept_retained() {
        if (audit != Audit::Done ||
            (outbox.delivered_topics() == 0 && outbox.pending_readings() == 0))
            return; // at start the audit reads the broker; with nothing sent, nothing to do
        checking_retained = true;
        broker_receipt.reset();
        broker_states.clear();
        retained_check_nonce =
            "retained-" + std::to_string(Steady::now().time_since_epoch().count());
        outbox.hold_readings(true);
        if (!readback.worth_trying()) // nothing would come back: decided on nothing read
            return finish_retained_check();
        readback_heard = false;
        try {
            for (const auto& filter : Readback::check_filters(config.topics))
                client->subscribe(filter, kQos, nullptr, subscribe_listener);
            client->publish(config.topics.bridge_audit(), retained_check_nonce.data(),
                            retained_check_nonce.size(), kQos, false);
        } catch (const mqtt::exception& e) {
            log.warn("mqtt_subscribe_failed", {{"error", e.what()}});
        }
        // Longer than at start: deciding too early on a slow broker gives back states older
        // than ones it holds. Readings are safe in the store meanwhile.
        const auto wait = config.discovery_audit_wait * 5;
        retained_check_timer.expires_after(wait);
        retained_check_timer.async_wait(
            [weak = weak_from_this(), wait](boost::system::error_code ec) {
                // No echo in time: decided on what came. With no receipt, giving the states back
                // costs a repeat at worst; leaving them out would cost missing values.
                if (auto self = weak.lock(); self && !ec) {
                    self->readback.timed_out(self->readback_heard);
                    self->log.warn("mqtt_broker_slow",
                                   {{"url", self->config.url},
                                    {"waited_ms", std::to_string(wait.count())},
                                    {"action", "deciding on what the broker sent so far"}});
                    self->finish_retained_check();
                }
            });
    }

    // The broker refused a read-back subscription (its ACL lets us write, not read): no echo
    // will come, so nothing waits for one, now or after later reconnects.
    void readback_refused(const std::string& filter) {
        readback.refused(filter);
        if (audit == Audit::Collecting) {
            audit_timer.cancel();
            finish_discovery_audit();
        }
        finish_retained_check();
    }

    // Decides on what arrived: at the echo, or when the wait ran out.
    void finish_retained_check() {
        if (!checking_retained)
            return;
        checking_retained = false;
        retained_check_timer.cancel();
        try {
            for (const auto& filter : Readback::check_filters(config.topics))
                client->unsubscribe(filter);
        } catch (const mqtt::exception& e) {
            log.debug("mqtt_unsubscribe_failed", {{"error", e.what()}});
        }
        // A receipt older than the newest the broker acknowledged: a broker that lost its latest
        // messages (killed between two saves of its persistence file).
        // A restore cut short by the lost connection is done again in full: the broker may
        // have been restarted since.
        const auto acknowledged = outbox.delivered_sequence(config.topics.bridge_delivered());
        const bool broker_current = broker_receipt && outbox.restoring() == 0 &&
                                    (!acknowledged || *broker_receipt >= *acknowledged);
        if (broker_current && *broker_receipt <= last_sequence) {
            std::size_t completed = 0;
            for (const auto sequence : outbox.complete_up_to(*broker_receipt)) {
                forget_pending(sequence);
                ++completed;
            }
            if (completed > 0)
                log.info("readings_already_delivered",
                         {{"readings", std::to_string(completed)},
                          {"up_to", std::to_string(*broker_receipt)},
                          {"action", "not sent again after the reconnect"}});
            if (const auto taken = outbox.confirm_first_part(broker_states); taken > 0)
                log.info("reading_partly_delivered",
                         {{"messages_already_at_broker", std::to_string(taken)},
                          {"action", "sending the rest after the reconnect"}});
        }
        broker_states.clear();
        if (!broker_current) {
            // Unknown what the broker took on the lost connection: an older state it may hold
            // behind a newer one goes to the history topic instead (docs/delivery.md).
            if (const auto moved = outbox.supersede_unconfirmed(
                    [&](const auto& old) { return history_of_superseded(config.topics, old); });
                moved > 0)
                log.info("superseded_states_to_history", {{"messages", std::to_string(moved)}});
            const auto restored = outbox.restore_delivered();
            log.warn("broker_lost_retained_messages",
                     {{"url", config.url},
                      {"topics", std::to_string(restored)},
                      {"receipt", broker_receipt ? std::to_string(*broker_receipt) : "none"},
                      {"action", "publishing the last delivered states again; enable "
                                 "persistence in the broker to keep them across restarts"}});
        }
        outbox.hold_readings(false);
        refill();
        pump();
    }

    // Readings kept so far that name the topic are older than the clear: left out.
    void clear_retained(const std::string& topic) {
        outbox.clear_topic(topic, last_sequence);
        retained_devices.erase(topic);
    }

    // A device's config, state and availability; `write` keeps the clears until the broker
    // has them, so that a restart before then still clears them.
    void clear_device(const AnnouncedDevice& device, WriteBatch& write) {
        for (const auto& topic : announced.forget(device, last_sequence, write))
            clear_retained(topic);
    }

    // Clears the broker has, with no stored reading left that names their topics, leave the
    // store.
    void settle_clears() {
        for (const auto& topic : outbox.take_cleared_at_broker())
            announced.clear_acknowledged(topic);
        if (announced.pending_clears() == 0)
            return;
        WriteBatch write;
        announced.settle(pending.empty() ? std::nullopt : std::optional(pending.front().sequence),
                         write);
        persist_logged(std::move(write), "removing clears the broker has");
    }

    // Publishes while the window has room. A refused publish goes back to the outbox and is
    // retried shortly, connected or not.
    void pump() {
        while (is_connected) {
            const auto send = outbox.next();
            if (!send)
                return;
            const OutgoingMessage& m = *send->message;
            try {
                tokens[send->id] =
                    client->publish(m.topic, m.payload.data(), m.payload.size(), kQos, m.retain,
                                    reinterpret_cast<void*>(static_cast<std::uintptr_t>(send->id)),
                                    delivery_listener);
            } catch (const mqtt::exception& e) {
                outbox.refused(send->id);
                tokens.erase(send->id);
                note_publish_failure(m.topic, e.what());
                arm_publish_retry();
                return;
            }
        }
    }

    void note_publish_failure(const std::string& topic, const std::string& error) {
        ++publish_failures;
        last_error = error;
        // Refusals come in bursts when the broker is slow: one line per burst is enough.
        if (!publish_retry_armed)
            log.warn("mqtt_publish_refused",
                     {{"topic", topic}, {"error", error}, {"action", "retrying"}});
    }

    void arm_publish_retry() {
        if (publish_retry_armed)
            return;
        publish_retry_armed = true;
        publish_retry_timer.expires_after(std::chrono::milliseconds(200));
        publish_retry_timer.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
            if (auto self = weak.lock(); self && !ec) {
                self->publish_retry_armed = false;
                self->pump();
            }
        });
    }

    void on_delivery(std::uint64_t id, bool ok) {
        const auto token = tokens.find(id);
        if (token == tokens.end())
            return; // from before a reconnect: that message is being sent again
        tokens.erase(token);
        if (!ok) {
            outbox.refused(id);
            note_publish_failure("", "the broker did not acknowledge a message");
            arm_publish_retry();
            return;
        }
        ++published;
        acknowledge(id);
        settle_clears();
        refill();
        pump();
    }

    // The broker has message `id`: readings now complete leave the store.
    void acknowledge(std::uint64_t id) {
        for (const auto sequence : outbox.acknowledged(id))
            forget_pending(sequence);
    }

    // At shutdown the io thread cannot run the acknowledgement callbacks: wait on the tokens
    // themselves, so that a reading the broker has is not published again after the restart.
    void settle_in_flight(std::chrono::milliseconds budget) {
        const auto deadline = Steady::now() + budget;
        for (const auto& [id, token] : tokens) {
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Steady::now());
            if (left.count() <= 0 || !token->wait_for(left) || token->get_return_code() != 0)
                continue; // stays in the store: published again after the restart
            acknowledge(id);
        }
        tokens.clear();
    }

    // Discovery and availability: latest values, queued only when they change.
    void publish_latest(const std::string& topic, const std::string& payload) {
        if (const auto* current = outbox.latest_payload(topic); current && *current == payload)
            return;
        outbox.put_latest({topic, payload, true});
    }

    void publish_device(DeviceDiscovery config_message) {
        // Until the broker's copies are known, a config could not say which components went
        // away; the audit's end publishes every device.
        if (audit != Audit::Done)
            return;
        if (const auto it = retained_devices.find(config_message.topic);
            it != retained_devices.end()) {
            mark_removed_components(config_message, it->second);
            it->second = component_ids(config_message.payload);
        }
        publish_latest(config_message.topic, config_message.payload.dump());
    }

    void publish_discovery(const std::string& ecu_id, const EcuEntry& entry) {
        const auto& state = entry.ledger.state();
        // No upload of it is committed yet (its first is being written, or could not be): there
        // is nothing to describe, and a device without a model would show briefly in Home
        // Assistant. The first commit announces it.
        if (state.ecu_model.empty())
            return;
        WriteBatch write; // what is announced is recorded, to be cleared once forgotten
        announced.announce(announced.ecu(ecu_id, config.discovery), write);
        for (const auto& [uid, inv] : state.inverters)
            announced.announce(announced.inverter(ecu_id, uid, config.discovery), write);
        persist_logged(std::move(write), "recording announced devices");
        if (!config.discovery)
            return;
        auto ecu_config = ecu_discovery(config.topics, ecu_id, state.ecu_model, config.sw_version);
        add_polled_ecu_discovery(ecu_config, entry.polled);
        publish_device(std::move(ecu_config));
        for (const auto& [uid, inv] : state.inverters) {
            auto inverter_config =
                inverter_discovery(config.topics, ecu_id, known_from(inv), config.sw_version);
            if (const auto it = entry.polled.inverters.find(uid);
                it != entry.polled.inverters.end())
                add_polled_inverter_discovery(inverter_config, uid, it->second);
            publish_device(std::move(inverter_config));
        }
    }

    void set_online(const std::string& ecu_id, const EcuEntry& entry, bool online) {
        const char* word = online ? kOnline : kOffline;
        publish_latest(config.topics.ecu_availability(ecu_id), word);
        for (const auto& [uid, inv] : entry.ledger.state().inverters)
            publish_latest(config.topics.inverter_availability(ecu_id, uid), word);
    }

    bool busy(const std::string& id) const {
        const auto it = ecus.find(id);
        return it != ecus.end() && it->second.busy();
    }
    EcuBusy busy_check() const {
        return [this](const std::string& id) { return busy(id); };
    }

    // The ECU's entry, or nullptr when tracking one more ECU would pass the cap.
    EcuEntry* entry_for(const std::string& id) {
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
            forget_ecu(quiet, "to make room for " + id +
                                  " (--max-ecus reached; it had fewer than " +
                                  std::to_string(kEstablishedAfter) + " readings kept)");
        return &ecus.emplace(id, EcuEntry(registry.add(id))).first->second;
    }

    // Clears everything of the ECU and its inverters: devices, states, availability, state file.
    void forget_ecu(const std::string& id, const std::string& why) {
        const auto it = ecus.find(id);
        if (it == ecus.end())
            return;
        WriteBatch drop;
        for (const auto& [uid, inv] : it->second.ledger.state().inverters)
            clear_device(announced.inverter(id, uid, true), drop);
        clear_device(announced.ecu(id, true), drop);
        auto waiting = std::move(it->second.waiting);
        ecus.erase(it);
        registry.forget(id);
        weak_panels.forget(id);
        // Cleared whether sent in this run or an earlier one; sent once, not kept.
        outbox.put_latest({weak_panels_topic(config.topics, id), "", true}, false);
        outbox.put_latest(
            {weak_panel_discovery(config.topics, id, config.sw_version).topic, "", true}, false);
        drop.drop_ecu_state(id);
        persist(std::move(drop), [weak = weak_from_this(), id](const std::string& error) {
            if (auto self = weak.lock(); self && !error.empty())
                self->log.warn("store_write_failed", {{"ecu", id}, {"error", error}});
        });
        log.warn("ecu_forgotten", {{"ecu", id}, {"reason", why}});
        for (auto& w : waiting) // answered as usual, no longer tracked
            w.done(UploadHandling{});
        pump();
    }

    void log_events(const std::string& id, const std::vector<LedgerEvent>& events) {
        for (const auto& e : events) {
            if (!log.enabled(level_of(e.level)))
                continue;
            std::vector<LogField> fields{{"ecu", id}};
            for (const auto& [key, value] : e.fields)
                fields.push_back({key, value});
            log.log(level_of(e.level), e.name, std::span<const LogField>(fields));
        }
    }

    std::optional<std::int64_t> offset_seconds(const EcuEntry& entry) const {
        if (const auto offset = entry.ledger.clock_offset())
            return offset->count();
        return std::nullopt;
    }

    nlohmann::json live_state_payload(const std::string& id, const EcuEntry& entry) const {
        const auto& ledger = entry.ledger.state();
        const auto last_seen = ledger.live && entry.live_state.is_null()
                                   ? clock.iso_with_offset(std::chrono::system_clock::time_point(
                                         std::chrono::seconds(ledger.live->received_s)))
                                   : std::string();
        return ecu2mqtt::live_state_payload(id, ledger, entry.live_state, offset_seconds(entry),
                                            entry.polled, last_seen);
    }

    void on_realtime(const RealtimeUpload& upload, std::chrono::system_clock::time_point received,
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
    void decide_and_keep(const std::string& id, EcuEntry& entry, const RealtimeUpload& sent,
                         std::chrono::system_clock::time_point received,
                         ReadingSink::HandlingDone done) {
        const auto held = registry.held_elsewhere(id, sent, unix_seconds(received));
        RealtimeUpload without_held;
        if (!held.empty()) {
            without_held = sent;
            std::erase_if(without_held.inverters, [&](const InverterReading& reading) {
                return held.contains(reading.uid);
            });
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
            auto live = live_messages(
                config.topics, id, upload, decision, clock.iso_with_offset(received), entry.polled,
                unix_seconds(clock.now()) - kPolledFreshIntervals * config.poll_interval.count());
            batch = std::move(live.batch);
            state = std::move(live.state);
            break;
        }
        case UploadVerdict::Late:
            batch =
                late_messages(config.topics, id, upload, decision, clock.iso_with_offset(received),
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
            kept.sequence = ++last_sequence;
            auto record = encode_reading(batch);
            kept.bytes = record.size();
            kept.at_s = unix_seconds(received);
            write.put_reading(kept.sequence, id, kept.at_s, std::move(record));
        }
        if (decision.verdict == UploadVerdict::Live || decision.verdict == UploadVerdict::Late)
            write.add_power_point(
                {id, format_iso(upload.timestamp), upload.power_w, decision.counter_kwh});
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
        persist(std::move(write), [weak = weak_from_this(), id, decision = std::move(decision),
                                   kept = std::move(kept),
                                   done = std::move(done)](const std::string& error) mutable {
            if (auto self = weak.lock())
                self->upload_committed(id, decision, std::move(kept), error, std::move(done));
        });
    }

    // What an upload's commit carries back to the io thread.
    struct Kept {
        std::uint64_t sequence = 0; // 0: nothing to publish
        std::size_t bytes = 0;
        std::int64_t at_s = 0;
        std::vector<OutgoingMessage> batch;
        nlohmann::json state;
    };

    void upload_committed(const std::string& id, const UploadDecision& decision, Kept kept,
                          const std::string& error, ReadingSink::HandlingDone done) {
        UploadHandling handling;
        handling.duplicate = decision.verdict == UploadVerdict::Repeat;
        handling.clock_suspect = decision.verdict == UploadVerdict::ClockSuspect;
        handling.counter_suspect = decision.verdict == UploadVerdict::CounterSuspect;
        handling.live = decision.verdict == UploadVerdict::Live;
        const auto it = ecus.find(id);
        if (it == ecus.end()) { // not expected (a busy ECU is never forgotten): not followed
            handling.handled = error.empty();
            if (error.empty() && kept.sequence)
                reading_kept(kept.sequence, kept.bytes, kept.at_s, std::move(kept.batch));
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
            entry.ledger.not_kept(decision);
            log_events(id, decision.events_if_not_kept);
            save(id, entry);
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
                reading_kept(kept.sequence, kept.bytes, kept.at_s, std::move(kept.batch));
            const bool new_devices = !same_devices(entry.ledger.state(), *decision.if_kept);
            const bool decided_on_older = entry.ledger.state().revision != decision.revision;
            entry.ledger.commit(decision);
            log_events(id, decision.events);
            if (decision.verdict == UploadVerdict::Live)
                entry.live_state = std::move(kept.state);
            if (decision.verdict == UploadVerdict::Live && weak_panels.observe(*decision.upload))
                publish_weak_panels(id);
            // A tick or a poll came in between: the stored state lacks its change.
            if (decided_on_older || entry.polled_unsaved)
                save(id, entry);
            set_online(id, entry, true);
            refresh_bridge_info();
            pump();
            handling.resend_from = decision.resend_from;
            // Discovery after the commit: it describes what the ledger now knows. Configs are
            // built only when the devices changed (reconnects and Home Assistant's restarts send
            // the queued ones again), and after the answer: building them is the costliest step
            // of a new installation's first upload, and ECUs waiting for theirs come first.
            if (new_devices)
                asio::post(io, [weak = weak_from_this(), id] {
                    if (auto self = weak.lock())
                        self->announce_devices(id);
                });
        }
        done(handling);
        next_waiting(id);
    }

    void announce_devices(const std::string& id) {
        const auto it = ecus.find(id);
        if (it == ecus.end())
            return;
        publish_discovery(id, it->second);
        pump();
    }

    void next_waiting(const std::string& id) {
        const auto it = ecus.find(id);
        if (it == ecus.end() || it->second.committing || it->second.waiting.empty())
            return;
        WaitingUpload next = std::move(it->second.waiting.front());
        it->second.waiting.pop_front();
        decide_and_keep(id, it->second, next.upload, next.received, std::move(next.done));
    }

    void on_raw(const std::string& ecu_id, std::string_view raw) {
        if (!config.publish_raw)
            return;
        outbox.put_latest(
            {config.topics.raw(ecu_id.empty() ? "unknown" : ecu_id), std::string(raw), false},
            false);
        pump();
    }

    // The weak-panel hint of one ECU (see WeakPanelWatch), with its Home Assistant entity.
    void publish_weak_panels(const std::string& id) {
        if (config.discovery && weak_panels.ready(id)) {
            const auto entity = weak_panel_discovery(config.topics, id, config.sw_version);
            outbox.put_latest({entity.topic, entity.payload.dump(), true});
        }
        outbox.put_latest({weak_panels_topic(config.topics, id),
                           weak_panels_json(weak_panels.weak(id)).dump(), true});
    }

    // Retained like the bridge state, and queued again only when its text changes.
    void refresh_bridge_info() {
        if (bridge_facts.is_null())
            return;
        std::map<std::string, std::size_t> tracked;
        for (const auto& [id, entry] : ecus)
            tracked[id] = entry.ledger.state().inverters.size();
        auto payload = bridge_info_payload(bridge_facts, tracked);
        if (payload == bridge_info_sent)
            return;
        bridge_info_sent = payload;
        outbox.put_latest({config.topics.bridge_info(), std::move(payload), true});
    }

    // New facts from an ECU's port 8899: its time zone gives its day from now on; its state and
    // discovery are published again when they add something. A failed poll never gets here.
    void on_polled(const std::string& id, const PolledEcuFacts& facts,
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
        // Every answer refreshes when the values were polled; what shows is published again
        // only when it changed.
        const bool shown_alike = same_values(facts, entry.polled);
        entry.polled = facts;
        // Kept with its state, so that a restart announces the polled entities again. Saved
        // after an upload being committed, which would otherwise overwrite it.
        if (entry.committing)
            entry.polled_unsaved = true;
        else
            save(id, entry);
        if (shown_alike)
            return;
        publish_discovery(id, entry);
        auto state = live_state_payload(id, entry);
        if (!state.is_null()) {
            entry.live_state = state;
            keep_reading(id, {{config.topics.ecu_state(id), state.dump(), true}});
        }
        pump();
    }

    // Periodic, per ECU: its midnight resets today's energy; silence makes it offline; inverters
    // unseen for long are forgotten (their device and topics cleared); old gaps expire.
    void tick() {
        const auto now = clock.now();
        auto ticks = registry.tick(now, busy_check());
        for (const auto& [id, t, changed] : ticks.ecus) {
            auto& entry = ecus.at(id);
            log_events(id, t.events);
            if (t.went_offline) {
                log.warn(
                    "ecu_offline",
                    {{"ecu", id}, {"silent_for_s", std::to_string(config.ecu_timeout.count())}});
                set_online(id, entry, false);
            }
            WriteBatch clears; // with the ledger's change, in one transaction
            for (const auto& uid : t.forgotten_inverters) {
                clear_device(announced.inverter(id, uid, true), clears);
                log.info("inverter_forgotten",
                         {{"ecu", id},
                          {"inverter", uid},
                          {"action", "cleared its discovery config, state and availability"}});
            }
            if (t.today_reset_to) {
                auto state = live_state_payload(id, entry);
                if (!state.is_null()) {
                    entry.live_state = state;
                    keep_reading(id, {{config.topics.ecu_state(id), state.dump(), true}});
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
                               std::to_string(config.forget_inverter_after.count() / 86400) +
                               " days");
        refresh_bridge_info();
        pump();
        tick_timer.expires_after(std::clamp<Steady::duration>(
            config.ecu_timeout / 4, std::chrono::milliseconds(250), std::chrono::seconds(10)));
        tick_timer.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
            if (auto self = weak.lock(); self && !ec)
                self->tick();
        });
    }

    // Once an hour: power points and daily energy past the retention leave the store.
    void prune_history(std::chrono::system_clock::time_point now) {
        if (!store || (last_prune && now - *last_prune < std::chrono::hours(1)))
            return;
        last_prune = now;
        const auto first_kept =
            add_seconds(clock.local(now), -std::int64_t(config.history_days) * 86400);
        WriteBatch prune;
        prune.prune_history(format_iso(date_of(first_kept)));
        persist_logged(std::move(prune), "pruning the history");
    }

    void save(const std::string& id, EcuEntry& entry, WriteBatch write = {}) {
        if (!store)
            return;
        entry.polled_unsaved = false;
        write.put_ecu_state(id,
                            state_record(id, entry.ledger.state(), entry.live_state, entry.polled));
        persist(std::move(write), [weak = weak_from_this(), id](const std::string& error) {
            if (auto self = weak.lock())
                self->state_saved(id, error);
        });
    }

    void state_saved(const std::string& id, const std::string& error) {
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

    void load_state() {
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
                if (config.polling && j.contains("polled")) // else its entities go, as they should
                    loaded.polled = polled_facts_from_record(j["polled"]);
                ecus.emplace(ecu_id, std::move(loaded));
                log.info("state_loaded", {{"ecu", id}});
            } catch (const nlohmann::json::exception& e) {
                // Starting afresh for that ECU beats not starting: its lifetime is re-learned
                // from the next upload, and the broken record is overwritten then.
                log.error("state_unreadable",
                          {{"ecu", id}, {"error", e.what()}, {"action", "starting it afresh"}});
            }
        }
    }

    void shutdown(std::chrono::milliseconds budget) {
        shutting_down = true;
        for (auto& [id, entry] : ecus)
            if (entry.unsaved)
                save(id, entry); // committed before the store closes
        retry_timer.cancel();
        publish_retry_timer.cancel();
        tick_timer.cancel();
        audit_timer.cancel();
        retained_check_timer.cancel();
        keep_retry_timer.cancel();
        if (!client)
            return;
        try {
            if (is_connected) {
                settle_in_flight(budget / 3);
                client
                    ->publish(config.topics.bridge_state(), kOffline, std::strlen(kOffline), kQos,
                              true)
                    ->wait_for(budget / 3);
                client->disconnect(budget / 6)->wait_for(budget / 3);
            } else {
                client->disconnect(std::chrono::milliseconds(0))->wait_for(budget / 2);
            }
        } catch (const mqtt::exception& e) {
            log.debug("mqtt_disconnect", {{"error", e.what()}});
        }
        is_connected = false;
        log.info("mqtt_disconnected", {{"url", config.url}});
    }
};

MqttPublisher::MqttPublisher(asio::io_context& io, PublisherConfig config, const Clock& clock,
                             Logger& log, Store* store)
    : impl_(std::make_shared<Impl>(io, std::move(config), clock, log, store)) {}

MqttPublisher::~MqttPublisher() {
    if (impl_->client && !impl_->shutting_down)
        impl_->shutdown(std::chrono::milliseconds(500));
}

void MqttPublisher::start() {
    impl_->start();
}
void MqttPublisher::shutdown(std::chrono::milliseconds budget) {
    impl_->shutdown(budget);
}
void MqttPublisher::on_realtime(const RealtimeUpload& upload,
                                std::chrono::system_clock::time_point received, HandlingDone done) {
    impl_->on_realtime(upload, received, std::move(done));
}
void MqttPublisher::on_raw(const std::string& ecu_id, std::string_view raw) {
    impl_->on_raw(ecu_id, raw);
}
void MqttPublisher::set_bridge_facts(nlohmann::json facts) {
    impl_->bridge_facts = std::move(facts);
    impl_->refresh_bridge_info();
    impl_->pump();
}
void MqttPublisher::on_polled(const std::string& ecu_id, const PolledEcuFacts& facts,
                              std::shared_ptr<const TimeZone> zone) {
    impl_->on_polled(ecu_id, facts, std::move(zone));
}
bool MqttPublisher::connected() const {
    return impl_->is_connected;
}
PublisherStatus MqttPublisher::status() const {
    const auto& pending = impl_->pending;
    return {impl_->is_connected,
            pending.size(),
            impl_->dropped,
            impl_->outbox.in_flight(),
            impl_->published,
            impl_->publish_failures,
            impl_->last_error,
            impl_->pending_bytes,
            pending.empty() ? std::nullopt : std::optional(pending.front().kept_at_s)};
}
std::vector<EcuView> MqttPublisher::ecus() const {
    std::vector<EcuView> views;
    for (const auto& [id, entry] : impl_->ecus) {
        const auto& state = entry.ledger.state();
        std::optional<EcuView::Live> live;
        if (state.live)
            live = EcuView::Live{format_iso(state.live->timestamp), state.live->received_s,
                                 state.live->power_w, state.live->lifetime_kwh};
        views.push_back({id, state.daily.today_kwh(), impl_->offset_seconds(entry),
                         entry.ledger.online(), state.ecu_model, std::move(live),
                         impl_->weak_panels.weak(id),
                         entry.ledger.time_zone() ? entry.ledger.time_zone()->name() : ""});
    }
    return views;
}

} // namespace ecu2mqtt
