#include "ecu2mqtt/mqtt/outbox.hpp"

namespace ecu2mqtt {

void Outbox::put_latest(OutgoingMessage message, bool keep) {
    if (message.payload.empty())
        delivered_.erase(message.topic); // cleared: nothing of it to give back
    auto& slot = latest_[message.topic];
    if (slot.restore) { // a newer value of the topic replaces the one given back
        slot.restore = false;
        --restoring_;
    }
    const bool was_due = slot.due && slot.stamp != 0;
    slot.keep = keep;
    slot.message = std::move(message);
    slot.stamp = next_stamp_++;
    slot.due = true;
    if (!was_due)
        latest_due_.push_back(slot.message.topic);
}

const std::string* Outbox::latest_payload(const std::string& topic) const {
    const auto it = latest_.find(topic);
    return it == latest_.end() ? nullptr : &it->second.message.payload;
}

void Outbox::put_reading(std::uint64_t sequence, std::vector<OutgoingMessage> messages) {
    const std::size_t count = messages.size();
    readings_.push_back(
        Reading{sequence, std::move(messages), std::vector<State>(count, State::Pending), count});
}

std::optional<Outbox::Send> Outbox::next() {
    if (in_flight_.size() >= window_)
        return std::nullopt;
    if (auto send = next_latest())
        return send;
    if (readings_held_ || restoring_ > 0)
        return std::nullopt;
    return next_reading();
}

std::optional<Outbox::Send> Outbox::next_latest() {
    while (!latest_due_.empty()) {
        const std::string topic = std::move(latest_due_.front());
        latest_due_.pop_front();
        auto it = latest_.find(topic);
        if (it == latest_.end() || !it->second.due)
            continue;
        Latest& slot = it->second;
        if (slot.flying) {
            // Only one version of a topic in flight, so they cannot overtake each other at the
            // broker; the newer one goes when the older is acknowledged.
            continue;
        }
        slot.due = false;
        slot.flying = true;
        const auto id = next_id_++;
        in_flight_.emplace(id, Flight{false, topic, slot.stamp, 0, 0});
        return Send{id, &slot.message};
    }
    return std::nullopt;
}

std::optional<Outbox::Send> Outbox::next_reading() {
    for (std::size_t r = first_pending_; r < readings_.size(); ++r) {
        Reading& reading = readings_[r];
        for (std::size_t i = 0; i < reading.messages.size(); ++i) {
            if (reading.states[i] != State::Pending)
                continue;
            first_pending_ = r;
            reading.states[i] = State::Flying;
            const auto id = next_id_++;
            in_flight_.emplace(id, Flight{true, {}, 0, reading.sequence, i});
            return Send{id, &reading.messages[i]};
        }
        first_pending_ = r + 1;
    }
    return std::nullopt;
}

Outbox::Reading* Outbox::find_reading(std::uint64_t sequence) {
    for (auto& r : readings_)
        if (r.sequence == sequence)
            return &r;
    return nullptr;
}

std::vector<std::uint64_t> Outbox::pop_completed() {
    std::vector<std::uint64_t> done;
    while (!readings_.empty() && readings_.front().unacked == 0) {
        done.push_back(readings_.front().sequence);
        readings_.pop_front();
        first_pending_ = first_pending_ > 0 ? first_pending_ - 1 : 0;
    }
    return done;
}

std::optional<Outbox::Flight> Outbox::land(std::uint64_t id) {
    const auto it = in_flight_.find(id);
    if (it == in_flight_.end())
        return std::nullopt; // from before a reconnect: already waiting again
    Flight flight = std::move(it->second);
    in_flight_.erase(it);
    return flight;
}

void Outbox::remember_delivered(const OutgoingMessage& message, std::uint64_t sequence) {
    if (!message.retain || message.payload.empty())
        return;
    auto& slot = delivered_[message.topic];
    if (slot.sequence > sequence)
        return; // acknowledgements of an older reading arriving late
    slot.payload = message.payload;
    slot.sequence = sequence;
}

std::size_t Outbox::restore_delivered() {
    std::size_t queued = 0;
    for (const auto& [topic, delivered] : delivered_) {
        if (latest_.contains(topic))
            continue;
        put_latest({topic, delivered.payload, true}, /*keep=*/false);
        latest_[topic].restore = true;
        ++queued;
    }
    restoring_ += queued;
    return queued;
}

std::vector<std::uint64_t> Outbox::acknowledged(std::uint64_t id) {
    const auto flight = land(id);
    if (!flight)
        return {};
    if (!flight->is_reading) {
        const auto slot = latest_.find(flight->topic);
        if (slot != latest_.end()) {
            slot->second.flying = false;
            if (slot->second.due) { // a newer version came meanwhile
                latest_due_.push_back(flight->topic);
            } else {
                if (slot->second.restore) {
                    slot->second.restore = false;
                    --restoring_;
                }
                if (!slot->second.keep)
                    latest_.erase(slot);
            }
        }
        return {};
    }
    Reading* reading = find_reading(flight->sequence);
    if (reading && reading->states[flight->index] == State::Flying) {
        reading->states[flight->index] = State::Acked;
        --reading->unacked;
        remember_delivered(reading->messages[flight->index], reading->sequence);
    }
    return pop_completed();
}

std::vector<std::uint64_t> Outbox::complete_up_to(std::uint64_t sequence) {
    std::erase_if(in_flight_, [&](const auto& entry) {
        return entry.second.is_reading && entry.second.sequence <= sequence;
    });
    for (auto& reading : readings_) {
        if (reading.sequence > sequence)
            continue;
        for (std::size_t i = 0; i < reading.messages.size(); ++i)
            if (reading.states[i] != State::Acked) {
                reading.states[i] = State::Acked;
                remember_delivered(reading.messages[i], reading.sequence);
            }
        reading.unacked = 0;
    }
    first_pending_ = 0;
    return pop_completed();
}

void Outbox::refused(std::uint64_t id) {
    const auto landed = land(id);
    if (!landed)
        return;
    const Flight& flight = *landed;
    if (!flight.is_reading) {
        const auto slot = latest_.find(flight.topic);
        if (slot != latest_.end()) {
            slot->second.flying = false;
            if (!slot->second.due) {
                slot->second.due = true;
                latest_due_.push_front(flight.topic);
            } else {
                latest_due_.push_back(flight.topic);
            }
        }
        return;
    }
    for (std::size_t r = 0; r < readings_.size(); ++r) {
        if (readings_[r].sequence != flight.sequence)
            continue;
        readings_[r].states[flight.index] = State::Pending;
        first_pending_ = std::min(first_pending_, r);
        return;
    }
}

void Outbox::connection_reset() {
    in_flight_.clear();
    for (auto& reading : readings_)
        for (auto& state : reading.states)
            if (state == State::Flying)
                state = State::Pending;
    first_pending_ = 0;
    latest_due_.clear();
    for (auto& [topic, slot] : latest_) {
        slot.flying = false;
        slot.due = true;
        latest_due_.push_back(topic);
    }
}

void Outbox::resend_latest(const std::string& prefix) {
    for (auto& [topic, slot] : latest_) {
        if (!topic.starts_with(prefix) || slot.due)
            continue;
        slot.due = true;
        if (!slot.flying)
            latest_due_.push_back(topic);
    }
}

std::size_t Outbox::pending_messages() const {
    std::size_t count = 0;
    for (const auto& reading : readings_)
        count += reading.unacked;
    for (const auto& [topic, slot] : latest_)
        count += slot.due ? 1 : 0;
    return count;
}

} // namespace ecu2mqtt
