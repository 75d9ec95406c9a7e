#include "ecu2mqtt/mqtt/mqtt_publisher.hpp"

#include "ecu2mqtt/ledger/daily_energy.hpp"
#include "ecu2mqtt/mqtt/ha_discovery.hpp"
#include "ecu2mqtt/store/spool.hpp"
#include "ecu2mqtt/store/state_file.hpp"

#include "ecu2mqtt/net/asio.hpp"
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

constexpr std::size_t kRememberedUploads = 600; // two days of five-minute uploads
constexpr std::int64_t kGapClosingSeconds =
    6 * 60; // an upload this soon after the gap start fills it

struct EcuRecord {
    std::string model;
    DailyEnergy daily;
    std::optional<LocalDateTime> last_timestamp; // newest upload kept
    std::set<LocalDateTime> kept;                // recent uploads kept, to recognise repeats
    std::optional<LocalDateTime> gap_since;      // last upload kept before one that could not be
    std::optional<double> lifetime_kwh;
    std::map<std::string, KnownInverter> inverters;
    nlohmann::json last_state; // the newest `<base>/<ecu>/state` payload, null before any
    Steady::time_point last_heard = Steady::now();
    bool online = false;
};

nlohmann::json record_to_json(const std::string& ecu_id, const EcuRecord& r) {
    auto inverters = nlohmann::json::array();
    for (const auto& [uid, inv] : r.inverters)
        inverters.push_back({{"uid", inv.uid},
                             {"model_code", inv.model_code},
                             {"model", inv.model},
                             {"channels", inv.channels}});
    nlohmann::json j{{"ecu_id", ecu_id},
                     {"model", r.model},
                     {"daily", r.daily.to_json()},
                     {"inverters", std::move(inverters)},
                     {"last_state", r.last_state}};
    if (r.last_timestamp)
        j["last_timestamp"] = format_compact(*r.last_timestamp);
    auto kept = nlohmann::json::array();
    for (const auto& t : r.kept)
        kept.push_back(format_compact(t));
    j["kept"] = std::move(kept);
    if (r.gap_since)
        j["gap_since"] = format_compact(*r.gap_since);
    if (r.lifetime_kwh)
        j["lifetime_energy_kwh"] = *r.lifetime_kwh;
    return j;
}

EcuRecord record_from_json(const nlohmann::json& j) {
    EcuRecord r;
    r.model = j.at("model").get<std::string>();
    r.daily = DailyEnergy::from_json(j.at("daily"));
    if (j.contains("last_timestamp"))
        r.last_timestamp = parse_compact_timestamp(j.at("last_timestamp").get<std::string>());
    if (j.contains("lifetime_energy_kwh"))
        r.lifetime_kwh = j.at("lifetime_energy_kwh").get<double>();
    for (const auto& t : j.value("kept", nlohmann::json::array()))
        if (const auto parsed = parse_compact_timestamp(t.get<std::string>()))
            r.kept.insert(*parsed);
    if (r.last_timestamp)
        r.kept.insert(*r.last_timestamp);
    if (j.contains("gap_since"))
        r.gap_since = parse_compact_timestamp(j.at("gap_since").get<std::string>());
    for (const auto& inv : j.at("inverters"))
        r.inverters[inv.at("uid").get<std::string>()] =
            KnownInverter{inv.at("uid").get<std::string>(), inv.at("model_code").get<std::string>(),
                          inv.at("model").get<std::string>(), inv.at("channels").get<int>()};
    r.last_state = j.value("last_state", nlohmann::json());
    return r;
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

// Reports each acknowledged (or failed) publish of a spooled reading; the sequence number of the
// reading travels as the token's user context.
class DeliveryListener final : public mqtt::iaction_listener {
  public:
    std::function<void(std::uint64_t sequence, bool ok)> on_done;

  private:
    void on_success(const mqtt::token& tok) override { report(tok, true); }
    void on_failure(const mqtt::token& tok) override { report(tok, false); }
    void report(const mqtt::token& tok, bool ok) {
        if (on_done)
            on_done(reinterpret_cast<std::uintptr_t>(tok.get_user_context()), ok);
    }
};

struct OutgoingMessage {
    std::string topic;
    std::string payload;
    bool retain = true;
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
          retry_timer(io), tick_timer(io) {}

    asio::io_context& io;
    PublisherConfig config;
    const Clock& clock;
    Logger& log;
    std::unique_ptr<mqtt::async_client> client;
    mqtt::connect_options connect_options;
    Spool spool;
    ConnectListener connect_listener;
    DeliveryListener delivery_listener;
    std::optional<std::uint64_t> in_flight; // spooled reading being published
    std::size_t acks_outstanding = 0;
    std::vector<mqtt::delivery_token_ptr> in_flight_tokens; // for a clean shutdown to wait on
    std::uint64_t dropped_reported = 0;
    asio::steady_timer retry_timer;
    asio::steady_timer tick_timer;
    std::chrono::seconds backoff{1};
    bool is_connected = false;
    bool shutting_down = false;
    int failures_in_a_row = 0;
    std::map<std::string, EcuRecord> ecus;
    // Topic -> newest payload of discovery and availability, re-sent on connect, and of states,
    // re-sent only when Home Assistant restarts (the broker already has acknowledged ones).
    std::map<std::string, std::string> retained;
    std::optional<LocalDate> current_day;

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
        client =
            std::make_unique<mqtt::async_client>(paho_server_uri(config.url), config.client_id);
        auto builder = mqtt::connect_options_builder()
                           .clean_session(true)
                           .keep_alive_interval(std::chrono::seconds(30))
                           .connect_timeout(std::chrono::seconds(5))
                           .automatic_reconnect(std::chrono::seconds(1), kMaxBackoff)
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
        delivery_listener.on_done = [&io = io, weak](std::uint64_t sequence, bool ok) {
            relay(io, weak, [sequence, ok](Impl& self) { self.on_delivery(sequence, ok); });
        };
        load_state();
        for (const auto& problem : spool.open())
            log.error("spool_unusable", {{"error", problem}});
        if (spool.size() > 0)
            log.info("spool_loaded", {{"readings", std::to_string(spool.size())},
                                      {"bytes", std::to_string(spool.bytes())}});
        log.info("mqtt_connecting", {{"url", config.url},
                                     {"client_id", config.client_id},
                                     {"user", config.user.empty() ? "(none)" : config.user}});
        connect();
        tick();
    }

    void connect() {
        if (shutting_down)
            return;
        try {
            client->connect(connect_options, nullptr, connect_listener);
        } catch (const mqtt::exception& e) {
            log.error("mqtt_connect_failed", {{"url", config.url}, {"error", e.what()}});
            schedule_reconnect();
        }
    }

    void schedule_reconnect() {
        retry_timer.expires_after(backoff);
        backoff = std::min(backoff * 2, kMaxBackoff);
        retry_timer.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
            if (auto self = weak.lock(); self && !ec)
                self->connect();
        });
    }

    void on_connect_failed(int rc) {
        if (shutting_down || is_connected)
            return;
        ++failures_in_a_row;
        // The first failure and then every tenth is worth a line at error level.
        const auto level = (failures_in_a_row == 1 || failures_in_a_row % 10 == 0)
                               ? LogLevel::Error
                               : LogLevel::Debug;
        log.log(level, "mqtt_connect_failed",
                {{"url", config.url},
                 {"reason", connack_reason(rc)},
                 {"attempt", std::to_string(failures_in_a_row)},
                 {"retry_in_s", std::to_string(backoff.count())}});
        schedule_reconnect();
    }

    void on_connected() {
        if (shutting_down)
            return;
        is_connected = true;
        failures_in_a_row = 0;
        backoff = std::chrono::seconds(1);
        log.info("mqtt_connected", {{"url", config.url}});
        try {
            client->subscribe(config.topics.ha_status(), kQos);
        } catch (const mqtt::exception& e) {
            log.warn("mqtt_subscribe_failed",
                     {{"topic", config.topics.ha_status()}, {"error", e.what()}});
        }
        send(config.topics.bridge_state(), kOnline, true);
        republish(/*with_states=*/false);
        pump();
    }

    void on_connection_lost(const std::string& cause) {
        is_connected = false;
        in_flight.reset(); // re-sent from the spool after reconnecting
        if (!shutting_down)
            log.warn("mqtt_connection_lost",
                     {{"url", config.url}, {"cause", cause.empty() ? "unknown" : cause}});
    }

    void on_message(const mqtt::message& msg) {
        // HA retains its own status: the copy delivered on subscribing is not a restart.
        if (msg.get_topic() == config.topics.ha_status() && !msg.is_retained() &&
            msg.to_string() == kOnline) {
            log.info("home_assistant_online", {{"action", "re-publishing discovery and states"}});
            republish(/*with_states=*/true);
        }
    }

    bool is_state_topic(const std::string& topic) const {
        return topic.ends_with("/state") && topic != config.topics.bridge_state();
    }

    // Configs first, so that Home Assistant knows the entities before their states arrive.
    void republish(bool with_states) {
        const std::string config_prefix = config.topics.discovery_prefix + "/";
        for (const bool configs_pass : {true, false})
            for (const auto& [topic, payload] : retained)
                if (topic.starts_with(config_prefix) == configs_pass &&
                    (with_states || !is_state_topic(topic)))
                    send(topic, payload, true);
    }

    // Writes a reading to the spool; it is published from there, in order.
    bool enqueue(const std::string& ecu_id, const std::vector<OutgoingMessage>& batch) {
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
        for (const auto& m : batch)
            if (m.retain)
                retained[m.topic] = m.payload;
        pump();
        return true;
    }

    // Publishes the oldest spooled reading when the broker is there and nothing is in flight.
    void pump() {
        while (is_connected && !in_flight) {
            std::string problem;
            const auto entry = spool.front(&problem);
            if (!problem.empty())
                log.error("spool_entry_lost", {{"error", problem}});
            if (!entry)
                return;
            try {
                const auto& messages = entry->reading.at("messages");
                in_flight = entry->sequence;
                acks_outstanding = messages.size();
                in_flight_tokens.clear();
                if (acks_outstanding == 0) {
                    finish_in_flight();
                    continue;
                }
                for (const auto& m : messages) {
                    const std::string topic = m.at("topic").get<std::string>();
                    const std::string payload = m.at("payload").get<std::string>();
                    in_flight_tokens.push_back(client->publish(
                        topic, payload.data(), payload.size(), kQos, m.value("retain", true),
                        reinterpret_cast<void*>(static_cast<std::uintptr_t>(entry->sequence)),
                        delivery_listener));
                }
            } catch (const nlohmann::json::exception& e) {
                log.error("spool_entry_lost",
                          {{"sequence", std::to_string(entry->sequence)}, {"error", e.what()}});
                finish_in_flight();
            } catch (const mqtt::exception& e) {
                log.warn("mqtt_publish_failed",
                         {{"error", e.what()}, {"action", "retrying after reconnect"}});
                in_flight.reset();
                return;
            }
        }
    }

    void finish_in_flight() {
        if (in_flight)
            spool.pop(*in_flight);
        in_flight.reset();
        acks_outstanding = 0;
        in_flight_tokens.clear();
    }

    // At shutdown the io thread cannot run the acknowledgement callbacks: wait on the tokens
    // themselves, so that a reading the broker has is not published again after the restart.
    void settle_in_flight(std::chrono::milliseconds budget) {
        if (!in_flight)
            return;
        const auto deadline = Steady::now() + budget;
        for (const auto& token : in_flight_tokens) {
            const auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Steady::now());
            if (left.count() <= 0 || !token->wait_for(left) || token->get_return_code() != 0)
                return; // stays in the spool: published again after the restart
        }
        finish_in_flight();
    }

    void on_delivery(std::uint64_t sequence, bool ok) {
        if (!in_flight || *in_flight != sequence)
            return; // from before a reconnect: that reading is being re-sent
        if (!ok) {
            in_flight.reset(); // left in the spool; re-sent after reconnecting
            return;
        }
        if (--acks_outstanding == 0) {
            finish_in_flight();
            pump();
        }
    }

    void send(const std::string& topic, const std::string& payload, bool retain) {
        if (!is_connected)
            return;
        try {
            client->publish(topic, payload.data(), payload.size(), kQos, retain);
        } catch (const mqtt::exception& e) {
            log.warn("mqtt_publish_failed", {{"topic", topic}, {"error", e.what()}});
        }
    }

    // Discovery and availability: latest values, sent only when they change (and on reconnect).
    void publish_retained_if_changed(const std::string& topic, const std::string& payload) {
        const auto it = retained.find(topic);
        if (it != retained.end() && it->second == payload)
            return;
        retained[topic] = payload;
        send(topic, payload, true);
    }

    void publish_discovery(const std::string& ecu_id, const EcuRecord& ecu) {
        if (!config.discovery)
            return;
        for (const auto& c : ecu_discovery(config.topics, ecu_id, ecu.model, config.sw_version))
            publish_retained_if_changed(c.topic, c.payload.dump());
        for (const auto& [uid, inv] : ecu.inverters)
            for (const auto& c : inverter_discovery(config.topics, ecu_id, inv, config.sw_version))
                publish_retained_if_changed(c.topic, c.payload.dump());
    }

    void set_online(const std::string& ecu_id, EcuRecord& ecu, bool online) {
        ecu.online = online;
        const char* word = online ? kOnline : kOffline;
        publish_retained_if_changed(config.topics.ecu_availability(ecu_id), word);
        for (const auto& [uid, inv] : ecu.inverters)
            publish_retained_if_changed(config.topics.inverter_availability(ecu_id, uid), word);
    }

    UploadHandling on_realtime(const RealtimeUpload& upload,
                               std::chrono::system_clock::time_point received) {
        const std::string& id = upload.ecu_id;
        EcuRecord& ecu = ecus[id];
        ecu.model = upload.ecu_model;
        ecu.last_heard = Steady::now();

        // A repeat of an upload already kept: answered, not published again.
        if (ecu.kept.contains(upload.timestamp)) {
            set_online(id, ecu, true); // it is talking, even if it says nothing new
            log.info("upload_already_handled",
                     {{"ecu", id}, {"timestamp", format_iso(upload.timestamp)}});
            return {true, true, ecu.gap_since};
        }
        // Older than the newest kept: the ECU filling a gap. Published in the order it arrives,
        // but not retained, so that the retained state stays the newest.
        const bool backfill = ecu.last_timestamp && upload.timestamp < *ecu.last_timestamp;

        for (const auto& inv : upload.inverters)
            ecu.inverters[inv.uid] = known_inverter_from(inv);
        publish_discovery(id, ecu);
        set_online(id, ecu, true);

        DailyEnergy daily = ecu.daily;
        daily.record(date_of(upload.timestamp), upload.lifetime_energy_kwh);
        if (!backfill && ecu.lifetime_kwh && upload.lifetime_energy_kwh < *ecu.lifetime_kwh)
            log.warn("lifetime_energy_went_down",
                     {{"ecu", id},
                      {"was", std::to_string(*ecu.lifetime_kwh)},
                      {"now", std::to_string(upload.lifetime_energy_kwh)},
                      {"action", "keeping the higher value"}});
        const double lifetime =
            backfill ? upload.lifetime_energy_kwh
                     : std::max(ecu.lifetime_kwh.value_or(0), upload.lifetime_energy_kwh);

        std::vector<OutgoingMessage> batch;
        std::set<std::string> present;
        for (const auto& inv : upload.inverters) {
            present.insert(inv.uid);
            batch.push_back({config.topics.inverter_state(id, inv.uid),
                             inverter_state_payload(inv, upload.timestamp).dump(), !backfill});
        }
        for (const auto& [uid, known] : ecu.inverters)
            if (!present.contains(uid))
                batch.push_back({config.topics.inverter_state(id, uid),
                                 absent_inverter_payload(known, upload.timestamp).dump(),
                                 !backfill});
        auto state =
            ecu_state_payload(upload, lifetime, daily.today_kwh(), clock.iso_with_offset(received));
        batch.push_back({config.topics.ecu_state(id), state.dump(), !backfill});

        if (!enqueue(id, batch)) {
            if (!ecu.gap_since && ecu.last_timestamp) {
                ecu.gap_since = ecu.last_timestamp;
                log.warn("gap_opened", {{"ecu", id}, {"after", format_iso(*ecu.gap_since)}});
            }
            save(id, ecu); // the inverters and discovery learned are still worth keeping
            return {false, false, ecu.gap_since};
        }
        ecu.daily = daily;
        ecu.kept.insert(upload.timestamp);
        while (ecu.kept.size() > kRememberedUploads)
            ecu.kept.erase(ecu.kept.begin());
        if (!backfill) {
            ecu.lifetime_kwh = lifetime;
            ecu.last_timestamp = upload.timestamp;
            ecu.last_state = std::move(state);
        }
        if (ecu.gap_since && upload.timestamp > *ecu.gap_since &&
            (backfill || to_epoch_seconds(upload.timestamp) - to_epoch_seconds(*ecu.gap_since) <=
                             kGapClosingSeconds)) {
            log.info("gap_filled", {{"ecu", id},
                                    {"after", format_iso(*ecu.gap_since)},
                                    {"with", format_iso(upload.timestamp)}});
            ecu.gap_since.reset();
        }
        save(id, ecu);
        return {true, false, ecu.gap_since};
    }

    void on_raw(const std::string& ecu_id, std::string_view raw) {
        if (!config.publish_raw)
            return;
        send(config.topics.raw(ecu_id.empty() ? "unknown" : ecu_id), std::string(raw), false);
    }

    // Periodic: local midnight resets today's energy; silent ECUs go offline.
    void tick() {
        const LocalDate today = date_of(clock.local_now());
        if (!current_day || today > *current_day) {
            current_day = today;
            for (auto& [id, ecu] : ecus) {
                const auto before = ecu.daily.today_kwh();
                ecu.daily.roll_to(today);
                const auto after = ecu.daily.today_kwh();
                if (before == after || ecu.last_state.is_null())
                    continue;
                log.info("daily_energy_reset", {{"ecu", id}, {"day", format_iso(today)}});
                ecu.last_state["today_energy_kwh"] = after ? nlohmann::json(*after) : nullptr;
                enqueue(id, {{config.topics.ecu_state(id), ecu.last_state.dump()}});
                save(id, ecu);
            }
        }
        const auto now = Steady::now();
        for (auto& [id, ecu] : ecus) {
            if (ecu.online && now - ecu.last_heard > config.ecu_timeout) {
                log.warn(
                    "ecu_offline",
                    {{"ecu", id}, {"silent_for_s", std::to_string(config.ecu_timeout.count())}});
                set_online(id, ecu, false);
            }
        }
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

    void save(const std::string& id, const EcuRecord& ecu) {
        if (config.state_dir.empty())
            return;
        if (const auto error = write_json_atomically(state_path(id), record_to_json(id, ecu));
            !error.empty())
            log.error("state_not_saved", {{"ecu", id}, {"error", error}});
    }

    void load_state() {
        if (config.state_dir.empty())
            return;
        std::error_code ec;
        for (const auto& entry : std::filesystem::directory_iterator(config.state_dir, ec)) {
            const auto name = entry.path().filename().string();
            if (!name.starts_with("ecu-") || !name.ends_with(".json"))
                continue;
            const StateRead read = read_json_state(entry.path());
            if (read.status == StateRead::Status::SetAside) {
                log.warn("state_file_set_aside", {{"file", entry.path().string()},
                                                  {"moved_to", read.set_aside_as.string()},
                                                  {"error", read.error}});
                continue;
            }
            try {
                const auto id = read.value.at("ecu_id").get<std::string>();
                ecus[id] = record_from_json(read.value);
                publish_discovery(id, ecus[id]);
                log.info("state_loaded", {{"ecu", id}, {"file", entry.path().string()}});
            } catch (const nlohmann::json::exception& e) {
                const auto aside = entry.path().string() + ".corrupt";
                std::filesystem::rename(entry.path(), aside, ec);
                log.warn(
                    "state_file_set_aside",
                    {{"file", entry.path().string()}, {"moved_to", aside}, {"error", e.what()}});
            }
        }
    }

    void shutdown(std::chrono::milliseconds budget) {
        shutting_down = true;
        retry_timer.cancel();
        tick_timer.cancel();
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
    return {impl_->is_connected, impl_->spool.size(), impl_->spool.dropped()};
}

} // namespace ecu2mqtt
