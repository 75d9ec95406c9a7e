#include "ecu2mqtt/mqtt/mqtt_publisher.hpp"

#include "ecu2mqtt/ledger/ecu_ledger.hpp"
#include "ecu2mqtt/mqtt/ha_discovery.hpp"
#include "ecu2mqtt/mqtt/outbox.hpp"
#include "ecu2mqtt/store/spool.hpp"
#include "ecu2mqtt/store/state_file.hpp"

#include "ecu2mqtt/net/asio.hpp"
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <map>
#include <mqtt/async_client.h>
#include <set>

namespace ecu2mqtt {

namespace asio = boost::asio;
using Steady = std::chrono::steady_clock;

namespace {

constexpr int kQos = 1;
constexpr std::chrono::seconds kMaxBackoff{60};

std::string connack_reason(int rc) {
    switch (rc) {
    case 1:
        return "broker refused the protocol version";
    case 2:
        return "broker rejected the client id";
    case 3:
        return "broker unavailable";
    case 4:
        return "bad user name or password";
    case 5:
        return "not authorized";
    default:
        return "broker not reachable or connection failed (code " + std::to_string(rc) + ")";
    }
}

// What the publisher keeps per ECU besides its ledger: the newest live state payload, which a
// midnight reset or a late reading of today publishes again with a new `today_energy_kwh`.
struct EcuEntry {
    EcuLedger ledger;
    nlohmann::json live_state; // null until a live reading (or rebuilt from the ledger)
    bool unsaved = false;      // the last write of its state file failed: tried again
};

KnownInverter known_from(const LedgerInverter& inv) {
    return {inv.uid, inv.model_code, inv.model, inv.channels};
}

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

// Forwards the MQTT client's completion callbacks, which arrive on its own thread.
class ConnectListener final : public mqtt::iaction_listener {
  public:
    std::function<void(int rc)> on_fail;

  private:
    void on_success(const mqtt::token&) override {}
    void on_failure(const mqtt::token& tok) override {
        if (on_fail)
            on_fail(tok.get_return_code());
    }
};

// Reports each acknowledged (or failed) publish; the outbox's id of the message travels as the
// token's user context.
class DeliveryListener final : public mqtt::iaction_listener {
  public:
    std::function<void(std::uint64_t id, bool ok)> on_done;

  private:
    void on_success(const mqtt::token& tok) override { report(tok, true); }
    void on_failure(const mqtt::token& tok) override { report(tok, false); }
    void report(const mqtt::token& tok, bool ok) {
        if (on_done)
            on_done(reinterpret_cast<std::uintptr_t>(tok.get_user_context()), ok);
    }
};

nlohmann::json reading_json(const std::string& ecu_id, const std::vector<OutgoingMessage>& batch) {
    auto messages = nlohmann::json::array();
    for (const auto& m : batch)
        messages.push_back({{"topic", m.topic}, {"payload", m.payload}, {"retain", m.retain}});
    return {{"ecu_id", ecu_id}, {"messages", std::move(messages)}};
}

} // namespace

std::string paho_server_uri(const std::string& url) {
    std::string scheme, rest;
    std::string default_port;
    if (url.starts_with("mqtt://")) {
        scheme = "tcp://";
        rest = url.substr(7);
        default_port = "1883";
    } else if (url.starts_with("mqtts://")) {
        scheme = "ssl://";
        rest = url.substr(8);
        default_port = "8883";
    } else {
        throw std::invalid_argument("MQTT URL must start with mqtt:// or mqtts://: " + url);
    }
    if (!rest.empty() && rest.back() == '/')
        rest.pop_back();
    if (rest.empty() || rest.find('/') != std::string::npos)
        throw std::invalid_argument("MQTT URL must be mqtt[s]://HOST[:PORT]: " + url);
    const bool bracketed_v6 = rest.front() == '[';
    const auto colon = rest.rfind(':');
    const bool has_port = colon != std::string::npos && (!bracketed_v6 || colon > rest.find(']'));
    return scheme + rest + (has_port ? "" : ":" + default_port);
}

struct MqttPublisher::Impl : std::enable_shared_from_this<MqttPublisher::Impl> {
    Impl(asio::io_context& io, PublisherConfig cfg, const Clock& clock, Logger& log)
        : io(io), config(std::move(cfg)), clock(clock), log(log),
          spool(std::filesystem::path(config.state_dir) / "spool", config.spool_max_bytes),
          outbox(config.max_in_flight), retry_timer(io), publish_retry_timer(io), tick_timer(io),
          audit_timer(io) {}

    asio::io_context& io;
    PublisherConfig config;
    const Clock& clock;
    Logger& log;
    // Declared before the client: the client's threads may still report to them while it is
    // being destroyed.
    ConnectListener connect_listener;
    DeliveryListener delivery_listener;
    std::unique_ptr<mqtt::async_client> client;
    mqtt::connect_options connect_options;
    Spool spool;
    Outbox outbox;
    std::map<std::uint64_t, mqtt::delivery_token_ptr> tokens; // outbox id -> token, in flight
    std::uint64_t dropped_reported = 0;
    std::uint64_t loaded_up_to = 0;         // the newest spool entry handed to the outbox
    asio::steady_timer retry_timer;         // reconnect
    asio::steady_timer publish_retry_timer; // a refused publish
    asio::steady_timer tick_timer;
    asio::steady_timer audit_timer;
    std::chrono::seconds backoff{1};
    bool is_connected = false;
    bool connecting = false;
    bool shutting_down = false;
    bool publish_retry_armed = false;
    int failures_in_a_row = 0;
    std::uint64_t published = 0;
    std::uint64_t publish_failures = 0;
    std::string last_error;
    std::map<std::string, EcuEntry> ecus;
    std::set<std::string> refused_ecus; // beyond max_ecus: warned about once each
    // Discovery lifecycle: our retained device configs as the broker has them (component ids),
    // collected at start; and whether the start-up audit is done.
    std::map<std::string, std::set<std::string>> retained_devices;
    enum class Audit { NotStarted, Collecting, Done } audit = Audit::NotStarted;

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
        outbox.put_latest({config.topics.bridge_state(), kOnline, true});
        load_state();
        load_spool();
        log.info("mqtt_connecting", {{"url", config.url},
                                     {"client_id", config.client_id},
                                     {"user", config.user.empty() ? "(none)" : config.user}});
        connect();
        tick();
    }

    void load_spool() {
        for (const auto& problem : spool.open())
            log.error("spool_unusable", {{"error", problem}});
        if (spool.size() > 0)
            log.info("spool_loaded", {{"readings", std::to_string(spool.size())},
                                      {"bytes", std::to_string(spool.bytes())}});
        refill();
    }

    // Memory holds at most kReadingsInMemory readings; the rest wait in the spool on disk and are
    // read in order as the broker acknowledges the ones before.
    static constexpr std::size_t kReadingsInMemory = 128;

    void refill() {
        std::vector<std::string> problems;
        while (outbox.pending_readings() < kReadingsInMemory) {
            auto entry = spool.next_after(loaded_up_to, problems);
            if (!entry)
                break;
            loaded_up_to = entry->sequence;
            auto messages = messages_of(entry->reading);
            if (!messages) {
                log.error("spool_entry_lost", {{"sequence", std::to_string(entry->sequence)},
                                               {"error", "no list of messages in the entry"}});
                spool.pop(entry->sequence);
                continue;
            }
            outbox.put_reading(entry->sequence, std::move(*messages));
        }
        for (const auto& problem : problems)
            log.error("spool_entry_lost", {{"error", problem}});
    }

    static std::optional<std::vector<OutgoingMessage>> messages_of(const nlohmann::json& reading) {
        try {
            const auto& list = reading.at("messages");
            if (!list.is_array())
                return std::nullopt;
            std::vector<OutgoingMessage> messages;
            for (const auto& m : list)
                messages.push_back({m.at("topic").get<std::string>(),
                                    m.at("payload").get<std::string>(), m.value("retain", true)});
            return messages;
        } catch (const nlohmann::json::exception&) {
            return std::nullopt;
        }
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
        schedule_reconnect();
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
        if (was_connected)
            log.warn("mqtt_connection_lost", {{"url", config.url},
                                              {"cause", last_error},
                                              {"pending", std::to_string(spool.size())}});
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
        if (audit == Audit::Collecting) {
            if (const auto key = our_device_key(config.topics, topic)) {
                if (msg.get_payload_str().empty()) {
                    retained_devices.erase(topic);
                    return;
                }
                try {
                    retained_devices[topic] =
                        component_ids(nlohmann::json::parse(msg.get_payload_str()));
                } catch (const nlohmann::json::exception&) {
                    retained_devices[topic] = {};
                }
            }
        }
    }

    // At start: collect our retained device configs, then clear those no longer wanted (all of
    // them when discovery is off), and remember the components of the rest so that components
    // that went away are removed from their device.
    void start_discovery_audit() {
        if (audit != Audit::NotStarted)
            return;
        audit = Audit::Collecting;
        const std::string filter = config.topics.discovery_prefix + "/device/+/config";
        try {
            client->subscribe(filter, kQos);
        } catch (const mqtt::exception& e) {
            log.warn("mqtt_subscribe_failed", {{"topic", filter}, {"error", e.what()}});
        }
        audit_timer.expires_after(config.discovery_audit_wait);
        audit_timer.async_wait([weak = weak_from_this(), filter](boost::system::error_code ec) {
            if (auto self = weak.lock(); self && !ec)
                self->finish_discovery_audit(filter);
        });
    }

    void finish_discovery_audit(const std::string& filter) {
        audit = Audit::Done;
        try {
            if (is_connected)
                client->unsubscribe(filter);
        } catch (const mqtt::exception& e) {
            log.debug("mqtt_unsubscribe_failed", {{"topic", filter}, {"error", e.what()}});
        }
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
        for (const auto& topic : unwanted)
            clear_retained(topic);
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

    void clear_retained(const std::string& topic) {
        outbox.put_latest({topic, "", true}, false);
        retained_devices.erase(topic);
    }

    // An inverter's device config, state and availability.
    void clear_inverter(const std::string& ecu_id, const std::string& uid) {
        clear_retained(device_discovery_topic(config.topics, uid));
        clear_retained(config.topics.inverter_state(ecu_id, uid));
        clear_retained(config.topics.inverter_availability(ecu_id, uid));
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
        if (acknowledge(id))
            refill();
        pump();
    }

    // The broker has message `id`: readings now complete leave the spool. True if any did.
    bool acknowledge(std::uint64_t id) {
        const auto completed = outbox.acknowledged(id);
        for (const auto sequence : completed)
            spool.pop(sequence);
        return !completed.empty();
    }

    // At shutdown the io thread cannot run the acknowledgement callbacks: wait on the tokens
    // themselves, so that a reading the broker has is not published again after the restart.
    void settle_in_flight(std::chrono::milliseconds budget) {
        const auto deadline = Steady::now() + budget;
        for (const auto& [id, token] : tokens) {
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Steady::now());
            if (left.count() <= 0 || !token->wait_for(left) || token->get_return_code() != 0)
                continue; // stays in the spool: published again after the restart
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
        if (!config.discovery)
            return;
        const auto& state = entry.ledger.state();
        publish_device(ecu_discovery(config.topics, ecu_id, state.ecu_model, config.sw_version));
        for (const auto& [uid, inv] : state.inverters)
            publish_device(
                inverter_discovery(config.topics, ecu_id, known_from(inv), config.sw_version));
    }

    void set_online(const std::string& ecu_id, const EcuEntry& entry, bool online) {
        const char* word = online ? kOnline : kOffline;
        publish_latest(config.topics.ecu_availability(ecu_id), word);
        for (const auto& [uid, inv] : entry.ledger.state().inverters)
            publish_latest(config.topics.inverter_availability(ecu_id, uid), word);
    }

    bool enqueue(const std::string& ecu_id, std::vector<OutgoingMessage> batch) {
        if (const auto error = spool.push(reading_json(ecu_id, batch)); !error.empty()) {
            log.error("spool_write_failed", {{"ecu", ecu_id}, {"error", error}});
            return false;
        }
        if (spool.dropped() > dropped_reported) {
            log.warn("spool_full_dropped_oldest",
                     {{"dropped_total", std::to_string(spool.dropped())},
                      {"limit_bytes", std::to_string(config.spool_max_bytes)}});
            dropped_reported = spool.dropped();
        }
        // Straight from memory when nothing older waits on disk only.
        if (loaded_up_to + 1 == spool.last_pushed() &&
            outbox.pending_readings() < kReadingsInMemory) {
            loaded_up_to = spool.last_pushed();
            outbox.put_reading(loaded_up_to, std::move(batch));
        } else {
            refill();
        }
        pump();
        return true;
    }

    LedgerConfig ledger_config() const {
        LedgerConfig c;
        c.offline_after = config.ecu_timeout;
        c.forget_inverter_after =
            std::chrono::duration_cast<std::chrono::days>(config.forget_inverter_after);
        c.max_inverters = config.max_inverters_per_ecu;
        c.gap_expiry = config.gap_expiry;
        return c;
    }

    // The ECU's entry, or nullptr when tracking one more ECU would pass the cap.
    EcuEntry* entry_for(const std::string& id) {
        if (const auto it = ecus.find(id); it != ecus.end())
            return &it->second;
        if (ecus.size() >= config.max_ecus) {
            // An offline ECU (silent past its timeout: a made-up id, say) makes room.
            const auto quietest =
                std::min_element(ecus.begin(), ecus.end(), [](const auto& a, const auto& b) {
                    return std::pair(a.second.ledger.online(),
                                     a.second.ledger.state().last_heard_s) <
                           std::pair(b.second.ledger.online(),
                                     b.second.ledger.state().last_heard_s);
                });
            if (quietest != ecus.end() && !quietest->second.ledger.online())
                forget_ecu(std::string(quietest->first),
                           "to make room for " + id + " (--max-ecus reached)");
        }
        if (ecus.size() >= config.max_ecus) {
            if (refused_ecus.size() < 1024 && refused_ecus.insert(id).second)
                log.warn("ecu_limit_reached",
                         {{"ecu", id},
                          {"limit", std::to_string(config.max_ecus)},
                          {"action", "answered, not published; raise --max-ecus or use "
                                     "--allow-ecus"}});
            return nullptr;
        }
        return &ecus.emplace(id, EcuEntry{EcuLedger(id, ledger_config()), {}}).first->second;
    }

    // Clears everything of the ECU and its inverters: devices, states, availability, state file.
    void forget_ecu(const std::string& id, const std::string& why) {
        const auto it = ecus.find(id);
        if (it == ecus.end())
            return;
        for (const auto& [uid, inv] : it->second.ledger.state().inverters)
            clear_inverter(id, uid);
        clear_retained(device_discovery_topic(config.topics, id));
        clear_retained(config.topics.ecu_state(id));
        clear_retained(config.topics.ecu_availability(id));
        ecus.erase(it);
        std::error_code ec;
        if (!config.state_dir.empty())
            std::filesystem::remove(state_path(id), ec);
        log.warn("ecu_forgotten", {{"ecu", id}, {"reason", why}});
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

    // The ECU state payload of the newest live reading, with today's energy and clock offset.
    nlohmann::json live_state_payload(const std::string& id, const EcuEntry& entry) const {
        nlohmann::json state = entry.live_state;
        const auto& ledger = entry.ledger.state();
        if (state.is_null() && ledger.live) { // after a restart: rebuilt from the ledger
            state = {{"id", id},
                     {"model", ledger.ecu_model},
                     {"timestamp", format_iso(ledger.live->timestamp)},
                     {"power_w", ledger.live->power_w},
                     {"inverters_online", ledger.live->inverters_online},
                     {"last_seen", clock.iso_with_offset(std::chrono::system_clock::time_point(
                                       std::chrono::seconds(ledger.live->received_s)))}};
        }
        if (state.is_null())
            return state;
        if (ledger.live)
            state["lifetime_energy_kwh"] = ledger.live->lifetime_kwh;
        const auto today = ledger.daily.today_kwh();
        state["today_energy_kwh"] = today ? nlohmann::json(*today) : nlohmann::json(nullptr);
        const auto offset = offset_seconds(entry);
        state["clock_offset_s"] = offset ? nlohmann::json(*offset) : nlohmann::json(nullptr);
        return state;
    }

    std::vector<OutgoingMessage> live_batch(const std::string& id, const RealtimeUpload& upload,
                                            const UploadDecision& decision,
                                            std::chrono::system_clock::time_point received,
                                            nlohmann::json& state) const {
        std::vector<OutgoingMessage> batch;
        const auto& known = decision.if_kept->inverters;
        const std::set<std::string> refused(decision.refused_inverters.begin(),
                                            decision.refused_inverters.end());
        for (const auto& inv : upload.inverters)
            if (!refused.contains(inv.uid))
                batch.push_back({config.topics.inverter_state(id, inv.uid),
                                 inverter_state_payload(inv, upload.timestamp).dump(), true});
        for (const auto& uid : decision.absent_inverters)
            if (const auto it = known.find(uid); it != known.end())
                batch.push_back(
                    {config.topics.inverter_state(id, uid),
                     absent_inverter_payload(known_from(it->second), upload.timestamp).dump(),
                     true});
        state = ecu_state_payload(upload, decision.state_lifetime_kwh, decision.today_kwh,
                                  clock.iso_with_offset(received));
        state["clock_offset_s"] = decision.clock_offset
                                      ? nlohmann::json(decision.clock_offset->count())
                                      : nlohmann::json(nullptr);
        batch.push_back({config.topics.ecu_state(id), state.dump(), true});
        return batch;
    }

    // A late reading: published once, with its own timestamp, on the history topic; when it
    // changed today's energy, the live state is published again with the new value.
    std::vector<OutgoingMessage> late_batch(const std::string& id, EcuEntry& entry,
                                            const RealtimeUpload& upload,
                                            const UploadDecision& decision,
                                            std::chrono::system_clock::time_point received) const {
        auto history = ecu_state_payload(upload, upload.lifetime_energy_kwh, std::nullopt,
                                         clock.iso_with_offset(received));
        history.erase("today_energy_kwh");
        auto inverters = nlohmann::json::object();
        for (const auto& inv : upload.inverters)
            inverters[inv.uid] = inverter_state_payload(inv, upload.timestamp);
        history["inverters"] = std::move(inverters);
        std::vector<OutgoingMessage> batch{{config.topics.history(id), history.dump(), false}};
        const auto before = entry.ledger.state().daily.today_kwh();
        if (decision.today_kwh != before && !entry.live_state.is_null()) {
            auto state = entry.live_state;
            state["today_energy_kwh"] =
                decision.today_kwh ? nlohmann::json(*decision.today_kwh) : nlohmann::json(nullptr);
            batch.push_back({config.topics.ecu_state(id), state.dump(), true});
        }
        return batch;
    }

    UploadHandling on_realtime(const RealtimeUpload& upload,
                               std::chrono::system_clock::time_point received) {
        const std::string& id = upload.ecu_id;
        EcuEntry* found = entry_for(id);
        if (!found)
            return UploadHandling{}; // answered as usual, not tracked
        EcuEntry& entry = *found;
        const UploadDecision decision = entry.ledger.decide(upload, received);
        if (!decision.refused_inverters.empty())
            log.warn("inverter_limit_reached",
                     {{"ecu", id},
                      {"limit", std::to_string(config.max_inverters_per_ecu)},
                      {"left_out", std::to_string(decision.refused_inverters.size())},
                      {"action", "raise --max-inverters-per-ecu"}});

        std::vector<OutgoingMessage> batch;
        nlohmann::json state;
        switch (decision.verdict) {
        case UploadVerdict::Live:
            batch = live_batch(id, upload, decision, received, state);
            break;
        case UploadVerdict::Late:
            batch = late_batch(id, entry, upload, decision, received);
            break;
        case UploadVerdict::Repeat:
        case UploadVerdict::ClockSuspect:
            break; // nothing to publish: the state file keeps that the ECU was heard
        }
        UploadHandling handling;
        handling.duplicate = decision.verdict == UploadVerdict::Repeat;
        handling.clock_suspect = decision.verdict == UploadVerdict::ClockSuspect;
        handling.live = decision.verdict == UploadVerdict::Live;
        if (!batch.empty() && !enqueue(id, std::move(batch))) {
            entry.ledger.not_kept(decision);
            log_events(id, decision.events_if_not_kept);
            save(id, entry);
            handling.handled = false;
            handling.resend_from = decision.resend_from_if_not_kept;
            return handling;
        }
        const bool new_devices = !same_devices(entry.ledger.state(), *decision.if_kept);
        entry.ledger.commit(decision);
        log_events(id, decision.events);
        if (decision.verdict == UploadVerdict::Live)
            entry.live_state = std::move(state);
        save(id, entry);
        // Discovery and availability after the commit: they describe what the ledger now knows.
        // Configs are built only when the devices changed; reconnects and Home Assistant's
        // restarts send the ones queued again.
        if (new_devices)
            publish_discovery(id, entry);
        set_online(id, entry, true);
        pump();
        handling.resend_from = decision.resend_from;
        return handling;
    }

    void on_raw(const std::string& ecu_id, std::string_view raw) {
        if (!config.publish_raw)
            return;
        outbox.put_latest(
            {config.topics.raw(ecu_id.empty() ? "unknown" : ecu_id), std::string(raw), false},
            false);
        pump();
    }

    // Periodic, per ECU: its midnight resets today's energy; silence makes it offline; inverters
    // unseen for long are forgotten (their device and topics cleared); old gaps expire.
    void tick() {
        const auto now = clock.now();
        for (auto& [id, entry] : ecus) {
            const auto before = entry.ledger.state().revision;
            const EcuLedger::Tick t = entry.ledger.tick(now);
            log_events(id, t.events);
            if (t.went_offline) {
                log.warn(
                    "ecu_offline",
                    {{"ecu", id}, {"silent_for_s", std::to_string(config.ecu_timeout.count())}});
                set_online(id, entry, false);
            }
            for (const auto& uid : t.forgotten_inverters) {
                clear_inverter(id, uid);
                log.info("inverter_forgotten",
                         {{"ecu", id},
                          {"inverter", uid},
                          {"action", "cleared its discovery config, state and availability"}});
            }
            if (t.today_reset_to) {
                auto state = live_state_payload(id, entry);
                if (!state.is_null()) {
                    entry.live_state = state;
                    enqueue(id, {{config.topics.ecu_state(id), state.dump(), true}});
                }
            }
            // A gap opened while the disk was full lives only in memory until this succeeds.
            if (entry.ledger.state().revision != before || entry.unsaved)
                save(id, entry);
        }
        // An ECU silent as long as an inverter is forgotten after goes too (a replaced ECU, or
        // an id someone made up).
        const auto now_s = std::chrono::duration_cast<std::chrono::seconds>(now.time_since_epoch());
        std::vector<std::string> silent;
        for (const auto& [id, entry] : ecus)
            if (now_s.count() - entry.ledger.state().last_heard_s >
                config.forget_inverter_after.count())
                silent.push_back(id);
        for (const auto& id : silent)
            forget_ecu(id, "silent for " +
                               std::to_string(config.forget_inverter_after.count() / 86400) +
                               " days");
        pump();
        tick_timer.expires_after(std::clamp<Steady::duration>(
            config.ecu_timeout / 4, std::chrono::milliseconds(250), std::chrono::seconds(10)));
        tick_timer.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
            if (auto self = weak.lock(); self && !ec)
                self->tick();
        });
    }

    std::filesystem::path state_path(const std::string& ecu_id) const {
        return std::filesystem::path(config.state_dir) / ("ecu-" + ecu_id + ".json");
    }

    void save(const std::string& id, EcuEntry& entry) {
        if (config.state_dir.empty())
            return;
        auto j = entry.ledger.to_json();
        j["live_state"] = entry.live_state;
        const auto error = write_json_atomically(state_path(id), j);
        if (!error.empty() && !entry.unsaved) // logged once per outage, retried on every tick
            log.error("state_not_saved",
                      {{"ecu", id}, {"error", error}, {"action", "retrying every few seconds"}});
        else if (error.empty() && entry.unsaved)
            log.info("state_saved", {{"ecu", id}, {"after", "an earlier failure"}});
        entry.unsaved = !error.empty();
    }

    void load_state() {
        if (config.state_dir.empty())
            return;
        std::error_code ec;
        for (const auto& file : std::filesystem::directory_iterator(config.state_dir, ec)) {
            const auto name = file.path().filename().string();
            if (!name.starts_with("ecu-") || !name.ends_with(".json"))
                continue;
            const StateRead read = read_json_state(file.path());
            if (read.status == StateRead::Status::SetAside) {
                log.warn("state_file_set_aside", {{"file", file.path().string()},
                                                  {"moved_to", read.set_aside_as.string()},
                                                  {"error", read.error}});
                continue;
            }
            try {
                // The offline timer starts now: an ECU silent since before the restart goes
                // offline one timeout from here.
                EcuLedger ledger = EcuLedger::from_json(read.value, ledger_config(), clock.now());
                const std::string id = ledger.ecu_id();
                auto live_state = read.value.value("live_state", nlohmann::json());
                ecus.insert_or_assign(id, EcuEntry{std::move(ledger), std::move(live_state)});
                log.info("state_loaded", {{"ecu", id}, {"file", file.path().string()}});
            } catch (const nlohmann::json::exception& e) {
                const auto aside = file.path().string() + ".corrupt";
                std::filesystem::rename(file.path(), aside, ec);
                log.warn(
                    "state_file_set_aside",
                    {{"file", file.path().string()}, {"moved_to", aside}, {"error", e.what()}});
            }
        }
    }

    void shutdown(std::chrono::milliseconds budget) {
        shutting_down = true;
        for (auto& [id, entry] : ecus)
            if (entry.unsaved)
                save(id, entry);
        retry_timer.cancel();
        publish_retry_timer.cancel();
        tick_timer.cancel();
        audit_timer.cancel();
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
                             Logger& log)
    : impl_(std::make_shared<Impl>(io, std::move(config), clock, log)) {}

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
UploadHandling MqttPublisher::on_realtime(const RealtimeUpload& upload,
                                          std::chrono::system_clock::time_point received) {
    return impl_->on_realtime(upload, received);
}
void MqttPublisher::on_raw(const std::string& ecu_id, std::string_view raw) {
    impl_->on_raw(ecu_id, raw);
}
bool MqttPublisher::connected() const {
    return impl_->is_connected;
}
PublisherStatus MqttPublisher::status() const {
    return {impl_->is_connected,       impl_->spool.size(),  impl_->spool.dropped(),
            impl_->outbox.in_flight(), impl_->published,     impl_->publish_failures,
            impl_->last_error,         impl_->spool.bytes(), impl_->spool.oldest_written()};
}
std::vector<EcuView> MqttPublisher::ecus() const {
    std::vector<EcuView> views;
    for (const auto& [id, entry] : impl_->ecus)
        views.push_back({id, entry.ledger.state().daily.today_kwh(), impl_->offset_seconds(entry),
                         entry.ledger.online()});
    return views;
}

} // namespace ecu2mqtt
