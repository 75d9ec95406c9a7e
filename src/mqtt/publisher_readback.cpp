#include "publisher_impl.hpp"

namespace ecu2mqtt {

void MqttPublisher::Impl::on_message(const mqtt::message& msg) {
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

void MqttPublisher::Impl::note_receipt(const std::string& payload) {
    if (const auto sequence = receipt_sequence(payload)) {
        delivered_up_to = *sequence;
        broker_receipt_payload = payload;
    }
}

std::optional<std::uint64_t> MqttPublisher::Impl::receipt_sequence(const std::string& payload) {
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

void MqttPublisher::Impl::note_broker_state(const std::string& topic, std::string payload) {
    if (broker_states.size() < kMaxAuditedStates)
        broker_states[topic] = std::move(payload);
}

void MqttPublisher::Impl::start_discovery_audit() {
    if (audit != Audit::NotStarted)
        return;
    audit = Audit::Collecting;
    audit_nonce = std::to_string(reinterpret_cast<std::uintptr_t>(this)) + "-" +
                  std::to_string(Steady::now().time_since_epoch().count());
    readback_heard = false;
    try {
        for (const auto& filter : Readback::audit_filters(config.topics))
            client->subscribe(filter, kQos, nullptr, subscribe_listener);
        client->publish(config.topics.bridge_audit(), audit_nonce.data(), audit_nonce.size(), kQos,
                        false);
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

void MqttPublisher::Impl::finish_discovery_audit() {
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
    log.debug("startup_audit_done", {{"retained_devices", std::to_string(retained_devices.size())},
                                     {"receipt", std::to_string(delivered_up_to)}});
    release_readings();
    std::set<std::string> wanted;
    if (config.discovery)
        for (const auto& [id, ecu] : devices) {
            wanted.insert(device_discovery_topic(config.topics, id));
            for (const auto& inverter : ecu.inverters)
                wanted.insert(device_discovery_topic(config.topics, inverter.uid));
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
    for (const auto& [id, ecu] : devices)
        publish_discovery(id, ecu);
    pump();
}

void MqttPublisher::Impl::check_broker_kept_retained() {
    if (audit != Audit::Done || (outbox.delivered_topics() == 0 && outbox.pending_readings() == 0))
        return; // at start the audit reads the broker; with nothing sent, nothing to do
    checking_retained = true;
    broker_receipt.reset();
    broker_states.clear();
    retained_check_nonce = "retained-" + std::to_string(Steady::now().time_since_epoch().count());
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
    retained_check_timer.async_wait([weak = weak_from_this(), wait](boost::system::error_code ec) {
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

void MqttPublisher::Impl::readback_refused(const std::string& filter) {
    readback.refused(filter);
    if (audit == Audit::Collecting) {
        audit_timer.cancel();
        finish_discovery_audit();
    }
    finish_retained_check();
}

void MqttPublisher::Impl::finish_retained_check() {
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

} // namespace ecu2mqtt
