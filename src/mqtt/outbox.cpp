#include "ecu2mqtt/mqtt/outbox.hpp"

namespace ecu2mqtt {

void Outbox::put_latest(OutgoingMessage message, bool keep) {
    auto& slot = latest_[message.topic];
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

std::vector<std::uint64_t> Outbox::acknowledged(std::uint64_t id) {
    const auto flight = land(id);
    if (!flight)
        return {};
    if (!flight->is_reading) {
        const auto slot = latest_.find(flight->topic);
        if (slot != latest_.end()) {
            slot->second.flying = false;
            if (slot->second.due) // a newer version came meanwhile
                latest_due_.push_back(flight->topic);
            else if (!slot->second.keep)
                latest_.erase(slot);
        }
        return {};
    }
    Reading* reading = find_reading(flight->sequence);
    if (reading && reading->states[flight->index] == State::Flying) {
        reading->states[flight->index] = State::Acked;
        --reading->unacked;
    }
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
