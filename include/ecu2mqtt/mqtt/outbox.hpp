// What waits to be published, and how much of it may be in flight: MQTT flow control, pure.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

namespace ecu2mqtt {

struct OutgoingMessage {
    std::string topic;
    std::string payload;
    bool retain = true;
};

// Two kinds of traffic share one bounded window of unacknowledged messages:
//  - latest values (discovery configs, availability, clears): keyed by topic, a newer payload
//    replaces a pending one; all of them are sent again after every reconnect;
//  - readings: lists of messages taken from the durable spool. A reading completes when the
//    broker has acknowledged every one of its messages; readings complete in the order given,
//    so the spool can drop them from its front. Their messages go out in that order too.
// A refused publish goes back to the head of its queue; a reconnect returns every message in
// flight to its queue, in order.
// The newest acknowledged retained message of each reading topic is remembered: a broker that
// lost its retained messages (restarted without persistence) is given them back by
// `restore_delivered`; readings wait until the broker has acknowledged all of them, so that
// nothing newer lands first.
// Nothing here talks to a broker: the publisher asks `next()`
// for what to send while `next()` has something, and reports `acknowledged`, `refused` and
// `connection_reset`.
class Outbox {
  public:
    explicit Outbox(std::size_t window) : window_(window == 0 ? 1 : window) {}

    struct Send {
        std::uint64_t id = 0; // reported back through acknowledged() / refused()
        const OutgoingMessage* message = nullptr;
    };

    // `keep` false: forget it once the broker has it (a clear of a retained topic), instead of
    // sending it again after every reconnect.
    void put_latest(OutgoingMessage message, bool keep = true);
    // Clears a retained topic (empty payload, sent once) that readings up to `readings_up_to`
    // may name too: their messages of it are older than the clear and are left out, also of
    // readings queued later, so the topic stays cleared (a forgotten inverter's state).
    void clear_topic(const std::string& topic, std::uint64_t readings_up_to);
    // Topics whose clear the broker acknowledged since the last call.
    std::vector<std::string> take_cleared_at_broker() {
        return std::exchange(cleared_at_broker_, {});
    }
    bool has_latest(const std::string& topic) const { return latest_.contains(topic); }
    const std::string* latest_payload(const std::string& topic) const;
    void put_reading(std::uint64_t sequence, std::vector<OutgoingMessage> messages);

    // The next message to publish, or nothing when the window is full or nothing waits.
    std::optional<Send> next();
    // Returns the readings that are now complete, oldest first.
    std::vector<std::uint64_t> acknowledged(std::uint64_t id);
    void refused(std::uint64_t id);
    // The connection is gone: nothing is in flight any more, everything unacknowledged waits
    // again, and every latest value is due again.
    void connection_reset();
    // Sends every latest value whose topic starts with `prefix` again (Home Assistant restarted).
    void resend_latest(const std::string& prefix);
    // While held, no reading message is handed out; latest values still are.
    void hold_readings(bool hold) { readings_held_ = hold; }
    // Queues, once, the newest acknowledged retained message of every reading topic that has
    // no latest value of its own pending (a clear, say) and that no waiting reading names (its
    // newer value follows), in the readings' order. Each is older than any reading still
    // waiting, so no reading message goes out until all of them are acknowledged. A reconnect
    // before then parks them until the caller decides again (calling this once more gives
    // everything back anew).
    std::size_t restore_delivered();
    std::size_t restoring() const { return restoring_; }
    // The broker has every reading up to `sequence` whole, by its receipt, although their
    // acknowledgements were lost with a connection: they complete without going out again
    // (an older reading sent again after a newer one would make its topics go back for a
    // moment). Only readings whose every message went out can be at the broker: the first
    // reading with a message never sent ends it, whatever the receipt says. Returns the
    // readings now complete, oldest first.
    std::vector<std::uint64_t> complete_up_to(std::uint64_t sequence);
    std::size_t delivered_topics() const { return delivered_.size(); }
    // After a reconnect, with no reading message in flight: a retained message sent on the lost
    // connection, unacknowledged, whose topic a later reading also sent on it names, may be at
    // the broker behind that later one already; sent again it would step the topic back. Such
    // messages of each reading are handed to `replace` (oldest reading first) and leave it; what
    // `replace` returns (their history message) takes the first one's place, unsent, so the
    // reading completes only once that is acknowledged. Returns how many messages left.
    std::size_t supersede_unconfirmed(
        const std::function<std::vector<OutgoingMessage>(const std::vector<OutgoingMessage>&)>&
            replace);
    // After complete_up_to: of the first reading still incomplete, the messages sent on the
    // lost connection up to the last one whose retained copy the broker holds (`broker_copies`:
    // topic -> payload) are there too, as messages reach it in order: they complete without
    // going out twice. Returns how many.
    std::size_t confirm_first_part(const std::map<std::string, std::string>& broker_copies);
    // What the broker held of a topic at start (read back from it), to give back like a
    // delivered message; any acknowledged reading message of the topic replaces it.
    void remember_held(const std::string& topic, std::string payload, std::uint64_t sequence,
                       std::size_t index);
    // The reading whose message of `topic` the broker acknowledged last, if any.
    std::optional<std::uint64_t> delivered_sequence(const std::string& topic) const;

    std::size_t in_flight() const { return in_flight_.size(); }
    std::size_t pending_readings() const { return readings_.size(); }
    std::size_t pending_messages() const;
    std::size_t window() const { return window_; }

  private:
    // Unsent: never sent (or refused), so not at the broker. Unconfirmed: sent on a connection
    // that went before its acknowledgement came; the broker may have it. Both go out again.
    enum class State : std::uint8_t { Unsent, Flying, Unconfirmed, Acked };
    struct Reading {
        std::uint64_t sequence;
        std::vector<OutgoingMessage> messages;
        std::vector<State> states;
        std::size_t unacked;
    };
    struct Flight {
        bool is_reading = false;
        std::string topic;              // a latest value
        std::uint64_t latest_stamp = 0; // which version of it was sent
        std::uint64_t sequence = 0;     // a reading
        std::size_t index = 0;          // its message
    };
    struct Delivered {
        std::string payload;
        std::uint64_t sequence = 0;
        std::size_t index = 0; // in its reading: given back in the readings' own order
    };
    struct Latest {
        OutgoingMessage message;
        std::uint64_t stamp = 0;
        bool due = true;     // to be sent (again)
        bool flying = false; // a send is unacknowledged
        bool keep = true;
        bool restore = false; // given back by restore_delivered, not yet acknowledged
    };

    std::optional<Send> next_latest();
    std::optional<Send> next_reading();
    // Takes message `id` out of the flight list; nullopt if it was not there.
    std::optional<Flight> land(std::uint64_t id);
    Reading* find_reading(std::uint64_t sequence);
    void remember_delivered(const OutgoingMessage& message, std::uint64_t sequence,
                            std::size_t index);
    // Message `index` of `reading` is at the broker: done, and remembered to give back.
    void mark_at_broker(Reading& reading, std::size_t index);
    // `slot` no longer holds a value given back (acknowledged, replaced or dropped).
    void end_restore(Latest& slot);
    bool cleared_after(const std::string& topic, std::uint64_t sequence) const;
    void leave_out_cleared(Reading& reading);
    std::vector<std::uint64_t> pop_completed();

    std::size_t window_;
    std::uint64_t next_id_ = 1;
    std::uint64_t next_stamp_ = 1;
    std::map<std::string, Latest> latest_;
    std::deque<std::string> latest_due_; // may hold topics no longer due: checked when taken
    std::deque<Reading> readings_;
    std::size_t first_pending_ = 0; // no reading before this index has a pending message
    std::unordered_map<std::uint64_t, Flight> in_flight_;
    // Topic -> the newest retained payload the broker acknowledged for it from a reading; a
    // clear (an empty latest value) removes the topic.
    std::unordered_map<std::string, Delivered> delivered_;
    // Topic -> the newest reading older than its clear. Grows only by topics ever cleared.
    std::unordered_map<std::string, std::uint64_t> cleared_;
    std::vector<std::string> cleared_at_broker_;
    bool readings_held_ = false;
    std::size_t restoring_ = 0; // latest values with `restore` set
};

} // namespace ecu2mqtt
