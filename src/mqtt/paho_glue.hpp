// The MQTT client's completion callbacks, which arrive on its own threads, forwarded to the
// publisher; and the CONNACK codes in words.
#pragma once

#include <cstdint>
#include <functional>
#include <mqtt/async_client.h>
#include <string>

namespace ecu2mqtt {

inline std::string connack_reason(int rc) {
    switch (rc) {
    case 1:
        return "broker refused the protocol version";
    case 2:
        return "broker rejected the client id";
    case 3:
        return "broker unavailable";
    case 4:
        return "bad user name or password";
    case 5:
        return "not authorized";
    default:
        return "broker not reachable or connection failed (code " + std::to_string(rc) + ")";
    }
}

class ConnectListener final : public mqtt::iaction_listener {
  public:
    std::function<void(int rc)> on_fail;

  private:
    void on_success(const mqtt::token&) override {}
    void on_failure(const mqtt::token& tok) override {
        if (on_fail)
            on_fail(tok.get_return_code());
    }
};

// Reports each acknowledged (or failed) publish; the outbox's id of the message travels as the
// token's user context.
class DeliveryListener final : public mqtt::iaction_listener {
  public:
    std::function<void(std::uint64_t id, bool ok)> on_done;

  private:
    void on_success(const mqtt::token& tok) override { report(tok, true); }
    void on_failure(const mqtt::token& tok) override { report(tok, false); }
    void report(const mqtt::token& tok, bool ok) {
        if (on_done)
            on_done(reinterpret_cast<std::uintptr_t>(tok.get_user_context()), ok);
    }
};

// Reports a subscription the broker refused: a SUBACK return code of 0x80 or more. Paho
// reports a refused single filter as a failure with that code, several as a success listing
// each filter's code.
class SubscribeListener final : public mqtt::iaction_listener {
  public:
    std::function<void(const std::string& filter)> on_refused;

  private:
    static constexpr int kRefused = 0x80;
    void on_success(const mqtt::token& tok) override {
        const auto response = tok.get_subscribe_response();
        for (const auto code : response.get_reason_codes())
            if (static_cast<int>(code) >= kRefused)
                return report(tok);
    }
    void on_failure(const mqtt::token& tok) override {
        if (tok.get_return_code() >= kRefused)
            report(tok);
    }
    void report(const mqtt::token& tok) {
        const auto topics = tok.get_topics();
        if (on_refused)
            on_refused(topics && topics->size() > 0 ? (*topics)[0] : std::string());
    }
};

} // namespace ecu2mqtt
