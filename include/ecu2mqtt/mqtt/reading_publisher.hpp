// What the upload pipeline hands committed readings and device changes to: the seam between
// deciding (app/upload_pipeline) and publishing (MqttPublisher).
#pragma once

#include "ecu2mqtt/mqtt/mqtt_payloads.hpp"
#include "ecu2mqtt/mqtt/outbox.hpp"
#include "ecu2mqtt/mqtt/polled_facts.hpp"

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ecu2mqtt {

class WriteBatch;

// What is announced of one ECU: its Home Assistant devices, as its ledger and polling know them.
struct EcuDevices {
    std::string ecu_model;                // empty: no upload committed yet, nothing to announce
    std::vector<KnownInverter> inverters; // by id
    PolledEcuFacts polled;
    // The ECU's weak-panel hint has had a whole sunny stretch: each inverter's device gets its
    // "Weak panel" entity.
    bool weak_panel_hint = false;
};

// Called on the io thread; nothing here blocks or decides about an ECU.
class ReadingPublisher {
  public:
    virtual ~ReadingPublisher() = default;

    virtual void start() = 0;
    virtual void shutdown(std::chrono::milliseconds budget) = 0;
    virtual const TopicScheme& topics() const = 0;
    virtual bool discovery() const = 0;
    virtual const std::string& sw_version() const = 0;

    // The number of the next reading to keep: its row in the store and its receipt carry it.
    virtual std::uint64_t next_sequence() = 0;
    // A reading now committed to the store under `sequence`: published after every one before.
    virtual void reading_committed(std::uint64_t sequence, std::size_t bytes,
                                   std::int64_t kept_at_s,
                                   std::vector<OutgoingMessage> messages) = 0;

    // The ECU is tracked, with these devices (none yet for a new one); bridge/info counts them.
    virtual void describe(const std::string& ecu_id, EcuDevices devices) = 0;
    // Its discovery configs, recorded as announced so that they are cleared once forgotten.
    virtual void announce(const std::string& ecu_id) = 0;
    virtual void set_online(const std::string& ecu_id, bool online) = 0;
    // Clears an inverter's device config, state and availability (or the ECU's and all of its
    // inverters', and it is no longer tracked); `write` records the clears until the broker has
    // them.
    virtual void forget_inverter(const std::string& ecu_id, const std::string& uid,
                                 WriteBatch& write) = 0;
    virtual void forget_ecu(const std::string& ecu_id, WriteBatch& write) = 0;
    // A latest value (the weak-panel hint and its entity): kept for reconnections unless `keep`
    // is false (a clear, sent once).
    virtual void put_latest(OutgoingMessage message, bool keep = true) = 0;
    // bridge/info again when what is tracked changed, once the uploads handled in this turn of
    // the loop are (a burst of new ECUs must not rebuild it for each).
    virtual void refresh_bridge_info() = 0;
    // Sends what is queued, as the window allows.
    virtual void publish_queued() = 0;
    // Every message as received (--publish-raw).
    virtual void on_raw(const std::string& ecu_id, std::string_view raw) = 0;
};

} // namespace ecu2mqtt
