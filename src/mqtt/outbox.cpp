#include "ecu2mqtt/mqtt/outbox.hpp"

#include <algorithm>
#include <unordered_set>

namespace ecu2mqtt {

void Outbox::put_latest(OutgoingMessage message, bool keep) {
    if (message.payload.empty())
        delivered_.erase(message.topic); // cleared: nothing of it to give back
    auto& slot = latest_[message.topic];
    end_restore(slot); // a newer value of the topic replaces one given back
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
        Reading{sequence, std::move(messages), std::vector<State>(count, State::Unsent), count});
    if (!cleared_.empty())
        leave_out_cleared(readings_.back()); // if nothing is left, it completes with the next
}

void Outbox::clear_topic(const std::string& topic, std::uint64_t readings_up_to) {
    auto& limit = cleared_[topic];
    limit = std::max(limit, readings_up_to);
    for (auto& reading : readings_)
        if (reading.sequence <= readings_up_to)
            leave_out_cleared(reading);
    put_latest({topic, "", true}, /*keep=*/false);
}

bool Outbox::cleared_after(const std::string& topic, std::uint64_t sequence) const {
    const auto it = cleared_.find(topic);
    return it != cleared_.end() && sequence <= it->second;
}

// Messages on the wire stay as they are: they went before the clear, which lands after them.
void Outbox::leave_out_cleared(Reading& reading) {
    for (std::size_t i = 0; i < reading.messages.size(); ++i)
        if ((reading.states[i] == State::Unsent || reading.states[i] == State::Unconfirmed) &&
            cleared_after(reading.messages[i].topic, reading.sequence)) {
            reading.states[i] = State::Acked;
            --reading.unacked;
        }
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
            if (reading.states[i] != State::Unsent && reading.states[i] != State::Unconfirmed)
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

void Outbox::mark_at_broker(Reading& reading, std::size_t index) {
    reading.states[index] = State::Acked;
    --reading.unacked;
    remember_delivered(reading.messages[index], reading.sequence, index);
}

void Outbox::end_restore(Latest& slot) {
    if (slot.restore) {
        slot.restore = false;
        --restoring_;
    }
}

void Outbox::remember_delivered(const OutgoingMessage& message, std::uint64_t sequence,
                                std::size_t index) {
    if (!message.retain || message.payload.empty() || cleared_after(message.topic, sequence))
        return; // a clear came after it
    auto& slot = delivered_[message.topic];
    if (slot.sequence > sequence)
        return; // acknowledgements of an older reading arriving late
    slot.payload = message.payload;
    slot.sequence = sequence;
    slot.index = index;
}

std::size_t Outbox::confirm_first_part(const std::map<std::string, std::string>& broker_copies) {
    if (readings_.empty())
        return 0;
    Reading& reading = readings_.front();
    std::size_t taken = 0;
    for (std::size_t i = 0; i < reading.messages.size(); ++i) {
        const auto& message = reading.messages[i];
        const auto copy = broker_copies.find(message.topic);
        if (reading.states[i] == State::Unconfirmed && message.retain &&
            copy != broker_copies.end() && copy->second == message.payload)
            taken = i + 1;
    }
    std::size_t confirmed = 0;
    for (std::size_t i = 0; i < taken; ++i)
        if (reading.states[i] == State::Unconfirmed) {
            mark_at_broker(reading, i);
            ++confirmed;
        }
    return confirmed;
}

void Outbox::remember_held(const std::string& topic, std::string payload, std::uint64_t sequence,
                           std::size_t index) {
    if (payload.empty() || delivered_.contains(topic))
        return;
    delivered_.emplace(topic, Delivered{std::move(payload), sequence, index});
}

std::optional<std::uint64_t> Outbox::delivered_sequence(const std::string& topic) const {
    const auto it = delivered_.find(topic);
    if (it == delivered_.end())
        return std::nullopt;
    return it->second.sequence;
}

// In the order the readings had them, so that a receipt goes after every state it vouches
// for: a crash part-way leaves the broker with no receipt for states it lacks.
// Again in full when a connection cut the last one short: what it gave back before may be lost
// with a broker restarted since.
// A topic a waiting reading names is left to that reading: its value is newer, and subscribers
// may have seen it already, before the connection went.
std::size_t Outbox::restore_delivered() {
    std::unordered_set<std::string> coming;
    for (const auto& reading : readings_)
        for (std::size_t i = 0; i < reading.messages.size(); ++i)
            if (reading.states[i] != State::Acked && reading.messages[i].retain)
                coming.insert(reading.messages[i].topic);
    std::vector<std::pair<const std::string*, const Delivered*>> order;
    for (const auto& [topic, delivered] : delivered_) {
        const auto slot = latest_.find(topic);
        const bool parked = slot != latest_.end() && slot->second.restore && !slot->second.flying;
        if (coming.contains(topic)) {
            if (parked) {
                end_restore(slot->second);
                latest_.erase(slot);
            }
            continue;
        }
        if (slot == latest_.end() || parked)
            order.emplace_back(&topic, &delivered);
    }
    std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
        return std::pair(a.second->sequence, a.second->index) <
               std::pair(b.second->sequence, b.second->index);
    });
    for (const auto& [topic, delivered] : order) {
        auto& slot = latest_[*topic];
        if (!slot.restore) {
            slot.restore = true;
            ++restoring_;
        }
        slot.message = {*topic, delivered->payload, true};
        slot.keep = false;
        slot.stamp = next_stamp_++;
        slot.due = true;
        latest_due_.push_back(*topic);
    }
    return order.size();
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
                end_restore(slot->second);
                if (slot->second.message.payload.empty())
                    cleared_at_broker_.push_back(flight->topic);
                if (!slot->second.keep)
                    latest_.erase(slot);
            }
        }
        return {};
    }
    Reading* reading = find_reading(flight->sequence);
    if (reading && reading->states[flight->index] == State::Flying)
        mark_at_broker(*reading, flight->index);
    return pop_completed();
}

std::vector<std::uint64_t> Outbox::complete_up_to(std::uint64_t sequence) {
    std::erase_if(in_flight_, [&](const auto& entry) {
        return entry.second.is_reading && entry.second.sequence <= sequence;
    });
    for (auto& reading : readings_) {
        if (reading.sequence > sequence)
            break;
        if (std::find(reading.states.begin(), reading.states.end(), State::Unsent) !=
            reading.states.end())
            break; // not all of it went out: neither it nor any later reading is there whole
        for (std::size_t i = 0; i < reading.messages.size(); ++i)
            if (reading.states[i] != State::Acked)
                mark_at_broker(reading, i);
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
        readings_[r].states[flight.index] = State::Unsent;
        first_pending_ = std::min(first_pending_, r);
        if (!cleared_.empty()) // it never left: a clear since would now go before it
            leave_out_cleared(readings_[r]);
        return;
    }
}

std::size_t Outbox::supersede_unconfirmed(
    const std::function<std::vector<OutgoingMessage>(const std::vector<OutgoingMessage>&)>&
        replace) {
    for (const auto& [id, flight] : in_flight_)
        if (flight.is_reading)
            return 0; // indexes of messages on the wire must stay as they are
    std::unordered_set<std::string> named_later;
    std::vector<std::vector<std::size_t>> superseded(readings_.size());
    for (std::size_t r = readings_.size(); r-- > 0;) {
        const auto& reading = readings_[r];
        for (std::size_t i = 0; i < reading.messages.size(); ++i)
            if (reading.states[i] == State::Unconfirmed && reading.messages[i].retain &&
                named_later.contains(reading.messages[i].topic))
                superseded[r].push_back(i);
        for (std::size_t i = 0; i < reading.messages.size(); ++i)
            if (reading.states[i] != State::Unsent && reading.messages[i].retain)
                named_later.insert(reading.messages[i].topic); // the broker may hold it
    }
    std::size_t left = 0;
    for (std::size_t r = 0; r < readings_.size(); ++r) {
        if (superseded[r].empty())
            continue;
        auto& reading = readings_[r];
        std::vector<OutgoingMessage> old;
        for (const auto i : superseded[r]) {
            old.push_back(std::move(reading.messages[i]));
            reading.states[i] = State::Acked;
            --reading.unacked;
        }
        left += old.size();
        auto instead = replace(old);
        const auto first = superseded[r].front();
        if (!instead.empty()) { // one slot is all a reading's history message needs
            reading.messages[first] = std::move(instead.front());
            reading.states[first] = State::Unsent;
            ++reading.unacked;
        }
        first_pending_ = std::min(first_pending_, r);
    }
    return left;
}

void Outbox::connection_reset() {
    in_flight_.clear();
    for (auto& reading : readings_) {
        for (auto& state : reading.states)
            if (state == State::Flying)
                state = State::Unconfirmed;
        // A message on the wire when its topic was cleared would now go after the clear.
        if (!cleared_.empty())
            leave_out_cleared(reading);
    }
    first_pending_ = 0;
    latest_due_.clear();
    for (auto& [topic, slot] : latest_) {
        slot.flying = false;
        // What is given back waits for the next check's verdict: sent before it, it could
        // make a broker that lost the rest look as if it had kept everything.
        slot.due = !slot.restore;
        if (slot.due)
            latest_due_.push_back(topic);
    }
}

void Outbox::resend_latest(const std::string& prefix) {
    for (auto& [topic, slot] : latest_) {
        if (!topic.starts_with(prefix) || slot.due || slot.restore)
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
