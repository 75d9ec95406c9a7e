// What the service has announced to Home Assistant and the clears of it the broker has not
// acknowledged yet, as the store keeps them: cleanup that needs no read-back from the broker.
// Pure: changes go into the caller's WriteBatch, and the caller sends the clears.
#pragma once

#include "ecu2mqtt/mqtt/mqtt_payloads.hpp"
#include "ecu2mqtt/store/store.hpp"

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace ecu2mqtt {

class AnnouncedDevices {
  public:
    explicit AnnouncedDevices(TopicScheme topics) : topics_(std::move(topics)) {}

    // A device's topics as this run names them; without discovery it announces no config.
    AnnouncedDevice ecu(const std::string& ecu_id, bool discovery) const;
    AnnouncedDevice inverter(const std::string& ecu_id, const std::string& uid,
                             bool discovery) const;

    // At start: what the store holds.
    void load(std::vector<AnnouncedDevice> devices, const std::vector<PendingClear>& clears);
    // At start: every topic to clear, each with the newest reading that may still name it
    // (readings up to it leave the topic out). `known` is what the ledger knows (ECU -> its
    // inverters): pending clears of their topics are dropped (known again), recorded topics of
    // anything else are cleared, bounded by `last_sequence`, and no longer recorded. Without
    // `discovery`, the configs of known devices are cleared too.
    std::vector<PendingClear> at_start(const std::map<std::string, std::vector<std::string>>& known,
                                       bool discovery, std::uint64_t last_sequence,
                                       WriteBatch& write);

    // The device goes out: recorded unless it is as recorded; clears of its topics are dropped.
    void announce(const AnnouncedDevice& device, WriteBatch& write);
    // The device is forgotten: its topics (as recorded and as named now) become pending clears
    // bounded by `readings_up_to`, returned; it is no longer recorded.
    std::vector<std::string> forget(const AnnouncedDevice& device, std::uint64_t readings_up_to,
                                    WriteBatch& write);
    // One topic to clear that no record names (a config found by reading the broker back).
    void clear(const std::string& topic, const std::string& ecu_id, std::uint64_t readings_up_to,
               WriteBatch& write);

    // The broker acknowledged the clear of `topic`.
    void clear_acknowledged(const std::string& topic);
    // Clears acknowledged and older than every reading still stored (`oldest_pending`, none if
    // empty) are settled: dropped from the store. A restart before then sends them again and
    // leaves their topics out of the stored readings.
    void settle(std::optional<std::uint64_t> oldest_pending, WriteBatch& write);

    std::size_t devices() const { return devices_.size(); }
    std::size_t pending_clears() const { return clears_.size(); }

  private:
    struct Pending {
        PendingClear clear;
        bool acknowledged = false;
    };
    void add_clear(const std::string& topic, const std::string& ecu_id,
                   std::uint64_t readings_up_to, WriteBatch& write);

    TopicScheme topics_;
    std::map<std::string, AnnouncedDevice> devices_; // by device id
    std::map<std::string, Pending> clears_;          // by topic
};

} // namespace ecu2mqtt
