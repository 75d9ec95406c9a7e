// The brokers of the delivery matrix behind one face: Mosquitto, Aedes (npm) and RabbitMQ's MQTT
// plugin (Debian), each started by the test on a free loopback port.
#pragma once

#include "aedes_broker.hpp"
#include "mosquitto_broker.hpp"
#include "rabbitmq_broker.hpp"

#include <memory>
#include <string>

namespace test {

enum class BrokerKind { Mosquitto, Aedes, RabbitMq };

inline const char* broker_name(BrokerKind kind) {
    switch (kind) {
    case BrokerKind::Mosquitto:
        return "mosquitto";
    case BrokerKind::Aedes:
        return "aedes";
    case BrokerKind::RabbitMq:
        return "rabbitmq";
    }
    return "?";
}

class TestBroker {
  public:
    virtual ~TestBroker() = default;
    virtual void start() = 0;
    virtual void stop() = 0; // clean stop
    virtual void kill() = 0; // a crash
    // Stopped, and started again with no retained message left (a broker without persistence).
    virtual void restart_empty() = 0;
    virtual std::string url() const = 0;
    virtual std::string log() const = 0;
    // Whether a subscription with a wildcard is handed the retained messages it matches
    // (RabbitMQ's plugin hands them only to exact topic filters).
    virtual bool retained_on_wildcards() const { return true; }
};

class MosquittoTestBroker final : public TestBroker {
  public:
    void start() override { broker_.start(); }
    void stop() override { broker_.stop(); }
    void kill() override { broker_.kill(); }
    void restart_empty() override {
        broker_.stop(); // without persistence: nothing survives
        broker_.start();
    }
    std::string url() const override { return broker_.url(); }
    std::string log() const override { return broker_.log(); }

  private:
    MosquittoBroker broker_;
};

class AedesTestBroker final : public TestBroker {
  public:
    void start() override { broker_.start(); }
    void stop() override { broker_.stop(); }
    void kill() override { broker_.kill(); }
    void restart_empty() override {
        broker_.stop(); // in-memory persistence: nothing survives
        broker_.start();
    }
    std::string url() const override { return broker_.url(); }
    std::string log() const override { return broker_.log(); }

  private:
    AedesBroker broker_;
};

class RabbitMqTestBroker final : public TestBroker {
  public:
    void start() override { broker_.start(); }
    void stop() override { broker_.stop(); }
    void kill() override { broker_.kill(); }
    void restart_empty() override {
        broker_.stop();
        broker_.forget_everything();
        broker_.start();
    }
    std::string url() const override { return broker_.url(); }
    std::string log() const override { return broker_.log(); }
    bool retained_on_wildcards() const override { return false; }

  private:
    RabbitMqBroker broker_;
};

inline std::unique_ptr<TestBroker> make_broker(BrokerKind kind) {
    switch (kind) {
    case BrokerKind::Mosquitto:
        return std::make_unique<MosquittoTestBroker>();
    case BrokerKind::Aedes:
        return std::make_unique<AedesTestBroker>();
    case BrokerKind::RabbitMq:
        return std::make_unique<RabbitMqTestBroker>();
    }
    return nullptr;
}

} // namespace test
