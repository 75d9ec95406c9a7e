#include "ecu2mqtt/mqtt/announced_devices.hpp"

#include "ecu2mqtt/mqtt/ha_discovery.hpp"

#include <algorithm>

namespace ecu2mqtt {

AnnouncedDevice AnnouncedDevices::ecu(const std::string& ecu_id, bool discovery) const {
    return {ecu_id, ecu_id, discovery ? device_discovery_topic(topics_, ecu_id) : "",
            topics_.ecu_state(ecu_id), topics_.ecu_availability(ecu_id)};
}

AnnouncedDevice AnnouncedDevices::inverter(const std::string& ecu_id, const std::string& uid,
                                           bool discovery) const {
    return {uid, ecu_id, discovery ? device_discovery_topic(topics_, uid) : "",
            topics_.inverter_state(ecu_id, uid), topics_.inverter_availability(ecu_id, uid)};
}

void AnnouncedDevices::load(std::vector<AnnouncedDevice> devices,
                            const std::vector<PendingClear>& clears) {
    for (auto& device : devices)
        devices_.insert_or_assign(device.device_id, std::move(device));
    for (const auto& clear : clears)
        clears_.insert_or_assign(clear.topic, Pending{clear});
}

std::vector<PendingClear>
AnnouncedDevices::at_start(const std::map<std::string, std::vector<std::string>>& known,
                           bool discovery, std::uint64_t last_sequence, WriteBatch& write) {
    std::set<std::string> wanted_topics;
    const auto want = [&](const AnnouncedDevice& d) {
        wanted_topics.insert({d.config_topic, d.state_topic, d.availability_topic});
    };
    for (const auto& [ecu_id, uids] : known) {
        want(ecu(ecu_id, discovery));
        for (const auto& uid : uids)
            want(inverter(ecu_id, uid, discovery));
    }
    const auto wanted = [&](const std::string& topic) { return wanted_topics.contains(topic); };
    std::erase_if(clears_, [&](const auto& entry) {
        if (!wanted(entry.first))
            return false;
        write.drop_clear(entry.second.clear);
        return true;
    });
    for (auto it = devices_.begin(); it != devices_.end();) {
        AnnouncedDevice& device = it->second;
        bool changed = false;
        for (auto* topic : {&device.config_topic, &device.state_topic, &device.availability_topic})
            if (!topic->empty() && !wanted(*topic)) {
                add_clear(*topic, device.ecu_id, last_sequence, write);
                topic->clear();
                changed = true;
            }
        if (device.config_topic.empty() && device.state_topic.empty() &&
            device.availability_topic.empty()) {
            write.drop_announced(device.device_id);
            it = devices_.erase(it);
            continue;
        }
        if (changed) // known, without discovery now: its config alone is cleared
            write.announce_device(device);
        ++it;
    }
    std::vector<PendingClear> due;
    for (const auto& [topic, pending] : clears_)
        due.push_back(pending.clear);
    return due;
}

void AnnouncedDevices::announce(const AnnouncedDevice& device, WriteBatch& write) {
    if (const auto it = devices_.find(device.device_id);
        it != devices_.end() && it->second == device)
        return;
    for (const auto* topic :
         {&device.config_topic, &device.state_topic, &device.availability_topic})
        clears_.erase(*topic);
    devices_.insert_or_assign(device.device_id, device);
    write.announce_device(device);
}

std::vector<std::string> AnnouncedDevices::forget(const AnnouncedDevice& device,
                                                  std::uint64_t readings_up_to, WriteBatch& write) {
    std::vector<std::string> topics;
    const auto add = [&](const AnnouncedDevice& d) {
        for (const auto* topic : {&d.config_topic, &d.state_topic, &d.availability_topic})
            if (!topic->empty() && std::find(topics.begin(), topics.end(), *topic) == topics.end())
                topics.push_back(*topic);
    };
    add(device);
    if (const auto it = devices_.find(device.device_id); it != devices_.end()) {
        add(it->second);
        devices_.erase(it);
    }
    write.drop_announced(device.device_id);
    for (const auto& topic : topics)
        add_clear(topic, device.ecu_id, readings_up_to, write);
    return topics;
}

void AnnouncedDevices::clear(const std::string& topic, const std::string& ecu_id,
                             std::uint64_t readings_up_to, WriteBatch& write) {
    add_clear(topic, ecu_id, readings_up_to, write);
}

void AnnouncedDevices::add_clear(const std::string& topic, const std::string& ecu_id,
                                 std::uint64_t readings_up_to, WriteBatch& write) {
    auto& pending = clears_[topic];
    pending.clear.topic = topic;
    pending.clear.ecu_id = ecu_id;
    pending.clear.readings_up_to = std::max(pending.clear.readings_up_to, readings_up_to);
    pending.acknowledged = false; // this clear goes out anew
    write.clear_topic(pending.clear);
}

void AnnouncedDevices::clear_acknowledged(const std::string& topic) {
    if (const auto it = clears_.find(topic); it != clears_.end())
        it->second.acknowledged = true;
}

void AnnouncedDevices::settle(std::optional<std::uint64_t> oldest_pending, WriteBatch& write) {
    std::erase_if(clears_, [&](const auto& entry) {
        const auto& [clear, acknowledged] = entry.second;
        if (!acknowledged || (oldest_pending && *oldest_pending <= clear.readings_up_to))
            return false;
        write.drop_clear(clear);
        return true;
    });
}

} // namespace ecu2mqtt
