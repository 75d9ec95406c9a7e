// A real MQTT subscriber for tests: records every message it gets and waits for the ones expected.
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mqtt/async_client.h>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace test {

struct Received {
    std::string topic;
    std::string payload;
    bool retained = false;
    // The broker sending again what this probe already has. A re-delivery (DUP flag) whose first
    // copy never arrived, lost with the connection, is the first copy and counts.
    bool duplicate = false;
};

class MqttProbe {
  public:
    // A `persistent_id` keeps the session (subscription and queued QoS 1 messages) at the broker
    // while the probe is away, and lets it reconnect by itself.
    MqttProbe(const std::string& url, const std::string& filter, const std::string& id = "probe",
              const std::string& persistent_id = {}, const std::string& user = {},
              const std::string& password = {})
        : client_(url_to_uri(url),
                  persistent_id.empty() ? id + "-" + std::to_string(counter()++) : persistent_id) {
        client_.set_message_callback([this](mqtt::const_message_ptr m) {
            std::lock_guard lock(mutex_);
            Received received{m->get_topic(), m->to_string(), m->is_retained(), false};
            received.duplicate = m->is_duplicate() && already_have(received);
            messages_.push_back(std::move(received));
            changed_.notify_all();
        });
        auto options =
            mqtt::connect_options_builder()
                .clean_session(persistent_id.empty())
                .automatic_reconnect(std::chrono::milliseconds(100), std::chrono::seconds(1))
                .finalize();
        if (!user.empty()) {
            options.set_user_name(user);
            options.set_password(password);
        }
        client_.connect(options)->wait();
        subscribe(filter);
    }
    ~MqttProbe() {
        try {
            client_.disconnect()->wait_for(std::chrono::seconds(1));
        } catch (...) {
        }
    }

    void subscribe(const std::string& filter) { client_.subscribe(filter, 1)->wait(); }

    void publish(const std::string& topic, const std::string& payload, bool retain = false) {
        client_.publish(topic, payload.data(), payload.size(), 1, retain)->wait();
    }

    std::vector<Received> messages() const {
        std::lock_guard lock(mutex_);
        return messages_;
    }
    void clear() {
        std::lock_guard lock(mutex_);
        messages_.clear();
    }

    // The first message matching `pred` received within `timeout`.
    std::optional<Received> wait_for(const std::function<bool(const Received&)>& pred,
                                     std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
        std::unique_lock lock(mutex_);
        std::optional<Received> found;
        changed_.wait_for(lock, timeout, [&] {
            for (const auto& m : messages_)
                if (pred(m)) {
                    found = m;
                    return true;
                }
            return false;
        });
        return found;
    }

    std::optional<Received>
    wait_for_topic(const std::string& topic,
                   std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
        return wait_for([&](const Received& m) { return m.topic == topic; }, timeout);
    }

    // The newest payload on `topic` once `pred` holds for it.
    std::optional<Received>
    wait_for_payload(const std::string& topic, const std::function<bool(const std::string&)>& pred,
                     std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
        return wait_for([&](const Received& m) { return m.topic == topic && pred(m.payload); },
                        timeout);
    }

    // True once at least `n` messages matching `pred` were received within `timeout`.
    bool wait_for_count(const std::function<bool(const Received&)>& pred, std::size_t n,
                        std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
        std::unique_lock lock(mutex_);
        return changed_.wait_for(lock, timeout, [&] {
            std::size_t matching = 0;
            for (const auto& m : messages_)
                matching += pred(m) ? 1 : 0;
            return matching >= n;
        });
    }

    std::size_t count(const std::function<bool(const Received&)>& pred) const {
        std::lock_guard lock(mutex_);
        std::size_t n = 0;
        for (const auto& m : messages_)
            n += pred(m) ? 1 : 0;
        return n;
    }

  private:
    bool already_have(const Received& m) const { // with mutex_ held
        return std::any_of(messages_.rbegin(), messages_.rend(), [&](const Received& earlier) {
            return earlier.topic == m.topic && earlier.payload == m.payload;
        });
    }
    static int& counter() {
        static int n = 0;
        return n;
    }
    static std::string url_to_uri(const std::string& url) {
        return "tcp://" + url.substr(url.find("://") + 3);
    }

    mqtt::async_client client_;
    mutable std::mutex mutex_;
    std::condition_variable changed_;
    std::vector<Received> messages_;
};

} // namespace test
