// Whether the broker lets the service read its own retained topics back, as learned on this run.
#pragma once

#include "ecu2mqtt/core/logger.hpp"
#include "ecu2mqtt/mqtt/mqtt_payloads.hpp"

#include <string>
#include <vector>

namespace ecu2mqtt {

// The start-up audit and the reconnect check subscribe to our own topics and wait for the echo
// of a nonce. A broker whose ACL lets the service write but not read either refuses those
// subscriptions (SUBACK 0x80: Mosquitto's dynamic security plugin, for one) or grants them and
// delivers nothing (Mosquitto's acl_file): the echo never comes. Once either is seen, waiting
// is pointless for the rest of the run, and the publisher goes on as when nothing could be read.
// Each is logged once, with what to grant.
// One of our retained state topics (of an ECU or an inverter).
bool is_our_state_topic(const TopicScheme& topics, const std::string& topic);

class Readback {
  public:
    Readback(Logger& log, std::string url, const TopicScheme& topics);

    // What the reconnect check reads: the receipt, our echo and the retained states.
    static std::vector<std::string> check_filters(const TopicScheme& topics);
    // What the start-up audit reads: the same, and our device configs.
    static std::vector<std::string> audit_filters(const TopicScheme& topics);

    // Whether reading back is worth a subscription and a wait on this connection.
    bool worth_trying() const { return state_ == State::Unknown || state_ == State::Works; }
    // The broker refused a read-back subscription to `filter`.
    void refused(const std::string& filter);
    // A wait for the echo ran out. With nothing read at all, on a broker that never echoed on
    // this run, reading is taken as silently denied. A broker that echoed before is only slow.
    void timed_out(bool anything_read);
    void echoed() {
        if (state_ == State::Unknown)
            state_ = State::Works;
    }

  private:
    enum class State { Unknown, Works, Refused, Unanswered };
    Logger& log_;
    std::string url_;
    std::string hint_;
    State state_ = State::Unknown;
};

} // namespace ecu2mqtt
