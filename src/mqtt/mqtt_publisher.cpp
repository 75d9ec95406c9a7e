#include "publisher_impl.hpp"

#include "ecu2mqtt/mqtt/weak_panel_payloads.hpp"

namespace ecu2mqtt {

void MqttPublisher::Impl::start() {
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
    load_pending();
    load_announced();
    log.info("mqtt_connecting", {{"url", config.url},
                                 {"client_id", config.client_id},
                                 {"user", config.user.empty() ? "(none)" : config.user}});
    connect();
}

void MqttPublisher::Impl::connect() {
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

void MqttPublisher::Impl::schedule_reconnect() {
    if (shutting_down)
        return;
    retry_timer.expires_after(backoff);
    backoff = std::min(backoff * 2, kMaxBackoff);
    retry_timer.async_wait([weak = weak_from_this()](boost::system::error_code ec) {
        if (auto self = weak.lock(); self && !ec)
            self->connect();
    });
}

void MqttPublisher::Impl::on_connect_failed(int rc) {
    connecting = false;
    if (shutting_down || is_connected)
        return;
    ++failures_in_a_row;
    last_error = connack_reason(rc);
    // The first failure and then every tenth is worth a line at error level.
    const auto level =
        (failures_in_a_row == 1 || failures_in_a_row % 10 == 0) ? LogLevel::Error : LogLevel::Debug;
    log.log(level, "mqtt_connect_failed",
            {{"url", config.url},
             {"reason", last_error},
             {"attempt", std::to_string(failures_in_a_row)},
             {"retry_in_s", std::to_string(backoff.count())}});
    if (level == LogLevel::Error)
        explain_tls_failure();
    schedule_reconnect();
}

void MqttPublisher::Impl::explain_tls_failure() {
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

void MqttPublisher::Impl::on_connected() {
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

void MqttPublisher::Impl::on_connection_lost(const std::string& cause) {
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

void MqttPublisher::Impl::clear_retained(const std::string& topic) {
    outbox.clear_topic(topic, last_sequence);
    retained_devices.erase(topic);
}

void MqttPublisher::Impl::clear_device(const AnnouncedDevice& device, WriteBatch& write) {
    for (const auto& topic : announced.forget(device, last_sequence, write))
        clear_retained(topic);
}

void MqttPublisher::Impl::pump() {
    while (is_connected) {
        const auto send = outbox.next();
        if (!send)
            return;
        const OutgoingMessage& m = *send->message;
        try {
            tokens[send->id] = client->publish(
                m.topic, m.payload.data(), m.payload.size(), kQos, m.retain,
                reinterpret_cast<void*>(static_cast<std::uintptr_t>(send->id)), delivery_listener);
        } catch (const mqtt::exception& e) {
            outbox.refused(send->id);
            tokens.erase(send->id);
            note_publish_failure(m.topic, e.what());
            arm_publish_retry();
            return;
        }
    }
}

void MqttPublisher::Impl::note_publish_failure(const std::string& topic, const std::string& error) {
    ++publish_failures;
    last_error = error;
    // Refusals come in bursts when the broker is slow: one line per burst is enough.
    if (!publish_retry_armed)
        log.warn("mqtt_publish_refused",
                 {{"topic", topic}, {"error", error}, {"action", "retrying"}});
}

void MqttPublisher::Impl::arm_publish_retry() {
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

void MqttPublisher::Impl::on_delivery(std::uint64_t id, bool ok) {
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

void MqttPublisher::Impl::settle_in_flight(std::chrono::milliseconds budget) {
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

void MqttPublisher::Impl::publish_latest(const std::string& topic, const std::string& payload) {
    if (const auto* current = outbox.latest_payload(topic); current && *current == payload)
        return;
    outbox.put_latest({topic, payload, true});
}

void MqttPublisher::Impl::publish_device(DeviceDiscovery config_message) {
    // Until the broker's copies are known, a config could not say which components went
    // away; the audit's end publishes every device.
    if (audit != Audit::Done)
        return;
    if (const auto it = retained_devices.find(config_message.topic); it != retained_devices.end()) {
        mark_removed_components(config_message, it->second);
        it->second = component_ids(config_message.payload);
    }
    publish_latest(config_message.topic, config_message.payload.dump());
}

void MqttPublisher::Impl::publish_discovery(const std::string& ecu_id, const EcuDevices& ecu) {
    // No upload of it is committed yet (its first is being written, or could not be): there
    // is nothing to describe, and a device without a model would show briefly in Home
    // Assistant. The first commit announces it.
    if (ecu.ecu_model.empty())
        return;
    WriteBatch write; // what is announced is recorded, to be cleared once forgotten
    announced.announce(announced.ecu(ecu_id, config.discovery), write);
    for (const auto& inverter : ecu.inverters)
        announced.announce(announced.inverter(ecu_id, inverter.uid, config.discovery), write);
    persist_logged(std::move(write), "recording announced devices");
    if (!config.discovery)
        return;
    // A device with nothing polled and no copy at the broker to compare with (every new one) is
    // written as text; the others are documents, which the polled keys and the removal markers
    // are added to. Same bytes either way.
    const auto as_text = [this](const std::string& key) {
        return audit == Audit::Done &&
               !retained_devices.contains(device_discovery_topic(config.topics, key));
    };
    if (!ecu.polled.firmware && !ecu.polled.time_zone && !ecu.polled.inverters_registered &&
        as_text(ecu_id)) {
        publish_latest(device_discovery_topic(config.topics, ecu_id),
                       ecu_discovery_text(config.topics, ecu_id, ecu.ecu_model, config.sw_version));
    } else {
        auto ecu_config = ecu_discovery(config.topics, ecu_id, ecu.ecu_model, config.sw_version);
        add_polled_ecu_discovery(ecu_config, ecu.polled);
        publish_device(std::move(ecu_config));
    }
    for (const auto& inverter : ecu.inverters) {
        const auto polled = ecu.polled.inverters.find(inverter.uid);
        // The weak-panel component, too, is added to a document.
        if (polled == ecu.polled.inverters.end() && !ecu.weak_panel_hint && as_text(inverter.uid)) {
            publish_latest(
                device_discovery_topic(config.topics, inverter.uid),
                inverter_discovery_text(config.topics, ecu_id, inverter, config.sw_version));
            continue;
        }
        auto inverter_config =
            inverter_discovery(config.topics, ecu_id, inverter, config.sw_version);
        if (polled != ecu.polled.inverters.end())
            add_polled_inverter_discovery(inverter_config, inverter.uid, polled->second);
        if (ecu.weak_panel_hint)
            add_weak_panel_component(inverter_config, config.topics, ecu_id, inverter.uid);
        publish_device(std::move(inverter_config));
    }
}

void MqttPublisher::Impl::set_online(const std::string& ecu_id, bool online) {
    const char* word = online ? kOnline : kOffline;
    publish_latest(config.topics.ecu_availability(ecu_id), word);
    if (const auto it = devices.find(ecu_id); it != devices.end())
        for (const auto& inverter : it->second.inverters)
            publish_latest(config.topics.inverter_availability(ecu_id, inverter.uid), word);
}

void MqttPublisher::Impl::forget_ecu(const std::string& id, WriteBatch& write) {
    const auto it = devices.find(id);
    if (it == devices.end())
        return;
    for (const auto& inverter : it->second.inverters)
        clear_device(announced.inverter(id, inverter.uid, true), write);
    clear_device(announced.ecu(id, true), write);
    devices.erase(it);
    bridge_info_due = true;
}

void MqttPublisher::Impl::on_raw(const std::string& ecu_id, std::string_view raw) {
    if (!config.publish_raw)
        return;
    outbox.put_latest(
        {config.topics.raw(ecu_id.empty() ? "unknown" : ecu_id), std::string(raw), false}, false);
    pump();
}

void MqttPublisher::Impl::refresh_bridge_info() {
    if (bridge_facts.is_null() || !bridge_info_due)
        return;
    bridge_info_due = false;
    std::map<std::string, std::size_t> tracked;
    for (const auto& [id, ecu] : devices)
        tracked[id] = ecu.inverters.size();
    auto payload = bridge_info_payload(bridge_facts, tracked);
    if (payload == bridge_info_sent)
        return;
    bridge_info_sent = payload;
    outbox.put_latest({config.topics.bridge_info(), std::move(payload), true});
}

void MqttPublisher::Impl::refresh_bridge_info_soon() {
    if (!bridge_info_due || bridge_info_posted)
        return;
    bridge_info_posted = true;
    asio::post(io, [weak = weak_from_this()] {
        if (auto self = weak.lock(); self && !self->shutting_down) {
            self->bridge_info_posted = false;
            self->refresh_bridge_info();
            self->pump();
        }
    });
}

void MqttPublisher::Impl::shutdown(std::chrono::milliseconds budget) {
    shutting_down = true;
    retry_timer.cancel();
    publish_retry_timer.cancel();
    audit_timer.cancel();
    retained_check_timer.cancel();
    if (!client)
        return;
    try {
        if (is_connected) {
            settle_in_flight(budget / 3);
            client
                ->publish(config.topics.bridge_state(), kOffline, std::strlen(kOffline), kQos, true)
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

MqttPublisher::MqttPublisher(asio::io_context& io, PublisherConfig config, Logger& log,
                             Store* store)
    : impl_(std::make_shared<Impl>(io, std::move(config), log, store)) {}

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
const TopicScheme& MqttPublisher::topics() const {
    return impl_->config.topics;
}
bool MqttPublisher::discovery() const {
    return impl_->config.discovery;
}
const std::string& MqttPublisher::sw_version() const {
    return impl_->config.sw_version;
}
std::uint64_t MqttPublisher::next_sequence() {
    return ++impl_->last_sequence;
}
void MqttPublisher::reading_committed(std::uint64_t sequence, std::size_t bytes,
                                      std::int64_t kept_at_s,
                                      std::vector<OutgoingMessage> messages) {
    impl_->reading_kept(sequence, bytes, kept_at_s, std::move(messages));
}
void MqttPublisher::describe(const std::string& ecu_id, EcuDevices devices) {
    impl_->devices.insert_or_assign(ecu_id, std::move(devices));
    impl_->bridge_info_due = true;
}
void MqttPublisher::announce(const std::string& ecu_id) {
    if (const auto it = impl_->devices.find(ecu_id); it != impl_->devices.end())
        impl_->publish_discovery(ecu_id, it->second);
}
void MqttPublisher::set_online(const std::string& ecu_id, bool online) {
    impl_->set_online(ecu_id, online);
}
void MqttPublisher::forget_inverter(const std::string& ecu_id, const std::string& uid,
                                    WriteBatch& write) {
    impl_->clear_device(impl_->announced.inverter(ecu_id, uid, true), write);
}
void MqttPublisher::forget_ecu(const std::string& ecu_id, WriteBatch& write) {
    impl_->forget_ecu(ecu_id, write);
}
void MqttPublisher::put_latest(OutgoingMessage message, bool keep) {
    impl_->outbox.put_latest(std::move(message), keep);
}
void MqttPublisher::refresh_bridge_info() {
    impl_->refresh_bridge_info_soon();
}
void MqttPublisher::publish_queued() {
    impl_->pump();
}
void MqttPublisher::on_raw(const std::string& ecu_id, std::string_view raw) {
    impl_->on_raw(ecu_id, raw);
}
void MqttPublisher::set_bridge_facts(nlohmann::json facts) {
    impl_->bridge_facts = std::move(facts);
    impl_->bridge_info_due = true;
    impl_->refresh_bridge_info();
    impl_->pump();
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

} // namespace ecu2mqtt
