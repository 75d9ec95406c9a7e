#include "publisher_impl.hpp"

namespace ecu2mqtt {

void MqttPublisher::Impl::load_pending() {
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

void MqttPublisher::Impl::load_announced() {
    if (!store)
        return;
    announced.load(store->announced_devices(), store->pending_clears());
    std::map<std::string, std::vector<std::string>> known; // ECU -> its inverters
    for (const auto& [id, ecu] : devices)
        for (auto& uids = known[id]; const auto& inverter : ecu.inverters)
            uids.push_back(inverter.uid);
    WriteBatch write;
    const auto due = announced.at_start(known, config.discovery, last_sequence, write);
    for (const auto& clear : due)
        outbox.clear_topic(clear.topic, clear.readings_up_to);
    if (!due.empty())
        log.info("announced_topics_cleared",
                 {{"topics", std::to_string(due.size())}, {"reason", "no longer known"}});
    persist_logged(std::move(write), "recording clears");
}

void MqttPublisher::Impl::refill() {
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

void MqttPublisher::Impl::to_outbox(std::uint64_t sequence, std::vector<OutgoingMessage> messages) {
    if (const auto sent = already_sent.find(sequence); sent != already_sent.end()) {
        messages.erase(messages.begin(), messages.begin() + static_cast<std::ptrdiff_t>(std::min(
                                                                sent->second, messages.size())));
        already_sent.erase(sent);
    }
    if (store)
        messages.push_back(
            {config.topics.bridge_delivered(),
             nlohmann::json{{"database", store->database_id()}, {"sequence", sequence}}.dump(),
             true});
    outbox.put_reading(sequence, std::move(messages));
}

void MqttPublisher::Impl::release_readings() {
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

void MqttPublisher::Impl::remember_what_the_broker_holds() {
    const auto remember = [&](const std::string& topic) {
        if (const auto copy = broker_states.find(topic); copy != broker_states.end())
            outbox.remember_held(topic, copy->second, 0, 0);
    };
    for (const auto& [id, ecu] : devices) {
        remember(config.topics.ecu_state(id));
        for (const auto& inverter : ecu.inverters)
            remember(config.topics.inverter_state(id, inverter.uid));
    }
    if (delivered_up_to > 0 && !broker_receipt_payload.empty()) // given back after the rest
        outbox.remember_held(config.topics.bridge_delivered(), broker_receipt_payload,
                             delivered_up_to, std::numeric_limits<std::size_t>::max());
}

void MqttPublisher::Impl::find_partly_delivered() {
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

bool MqttPublisher::Impl::is_pending(std::uint64_t sequence) const {
    const auto it =
        std::lower_bound(pending.begin(), pending.end(), sequence,
                         [](const PendingSummary& p, std::uint64_t s) { return p.sequence < s; });
    return it != pending.end() && it->sequence == sequence;
}

void MqttPublisher::Impl::forget_pending(std::uint64_t sequence) {
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

void MqttPublisher::Impl::persist_logged(WriteBatch batch, std::string what) {
    if (batch.empty())
        return;
    persist(std::move(batch), [weak = weak_from_this(), what](const std::string& error) {
        if (auto self = weak.lock(); self && !error.empty())
            self->log.warn("store_write_failed", {{"error", error}, {"what", what}});
    });
}

void MqttPublisher::Impl::persist(WriteBatch batch, Store::Done done) {
    if (store) {
        store->submit(std::move(batch), std::move(done));
        return;
    }
    asio::post(io, [done = std::move(done)] { done(""); });
}

void MqttPublisher::Impl::reading_kept(std::uint64_t sequence, std::size_t bytes,
                                       std::int64_t kept_at_s, std::vector<OutgoingMessage> batch) {
    const bool older_waiting_in_store = !pending.empty() && pending.back().sequence > loaded_up_to;
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

void MqttPublisher::Impl::settle_clears() {
    for (const auto& topic : outbox.take_cleared_at_broker())
        announced.clear_acknowledged(topic);
    if (announced.pending_clears() == 0)
        return;
    WriteBatch write;
    announced.settle(pending.empty() ? std::nullopt : std::optional(pending.front().sequence),
                     write);
    persist_logged(std::move(write), "removing clears the broker has");
}

void MqttPublisher::Impl::acknowledge(std::uint64_t id) {
    for (const auto sequence : outbox.acknowledged(id))
        forget_pending(sequence);
}

} // namespace ecu2mqtt
