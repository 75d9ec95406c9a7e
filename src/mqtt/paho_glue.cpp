// What the publisher needs around the Paho client: the broker URL in Paho's form, and what the
// broker lets us read back.
#include "ecu2mqtt/mqtt/mqtt_publisher.hpp"
#include "ecu2mqtt/mqtt/readback.hpp"

#include <stdexcept>

namespace ecu2mqtt {

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

Readback::Readback(Logger& log, std::string url, const TopicScheme& topics)
    : log_(log), url_(std::move(url)),
      hint_("let this client subscribe to and read " + topics.base + "/# and " +
            topics.discovery_prefix +
            "/device/+/config; without that, every reconnect publishes the newest states again "
            "and devices are cleaned up from the state directory's record only") {}

bool is_our_state_topic(const TopicScheme& topics, const std::string& topic) {
    return topic.ends_with("/state") && topic.starts_with(topics.base + "/") &&
           topic != topics.bridge_state();
}

std::vector<std::string> Readback::check_filters(const TopicScheme& topics) {
    return {topics.bridge_delivered(), topics.bridge_audit(), topics.base + "/+/state",
            topics.base + "/+/+/state"};
}

std::vector<std::string> Readback::audit_filters(const TopicScheme& topics) {
    auto filters = check_filters(topics);
    filters.push_back(topics.discovery_prefix + "/device/+/config");
    return filters;
}

void Readback::refused(const std::string& filter) {
    if (state_ == State::Refused)
        return;
    state_ = State::Refused;
    log_.warn("mqtt_readback_refused",
              {{"url", url_},
               {"filter", filter},
               {"hint", hint_},
               {"action", "going on as if nothing could be read, without waiting"}});
}

void Readback::timed_out(bool anything_read) {
    if (state_ != State::Unknown || anything_read)
        return;
    state_ = State::Unanswered;
    log_.warn("mqtt_readback_unanswered",
              {{"url", url_},
               {"hint", hint_},
               {"action", "later reconnects go on as if nothing could be read, without waiting"}});
}

} // namespace ecu2mqtt
