// The store's records of what was announced to Home Assistant and of the clears not yet at the
// broker (see Store); the writing side is in store.cpp with the other statements.
#include "ecu2mqtt/store/store.hpp"

namespace ecu2mqtt {

void WriteBatch::announce_device(AnnouncedDevice device) {
    ops_.emplace_back(std::move(device));
}
void WriteBatch::drop_announced(std::string device_id) {
    ops_.emplace_back(DropAnnounced{std::move(device_id)});
}
void WriteBatch::clear_topic(PendingClear clear) {
    ops_.emplace_back(ClearTopic{std::move(clear)});
}
void WriteBatch::drop_clear(PendingClear clear) {
    ops_.emplace_back(DropClear{std::move(clear)});
}

std::vector<AnnouncedDevice> Store::announced_devices() {
    std::vector<AnnouncedDevice> devices;
    auto query = reader_.prepare("SELECT device_id, ecu_id, config_topic, state_topic, "
                                 "availability_topic FROM announced_devices ORDER BY device_id");
    while (query.step())
        devices.push_back({std::string(query.column_text(0)), std::string(query.column_text(1)),
                           std::string(query.column_text(2)), std::string(query.column_text(3)),
                           std::string(query.column_text(4))});
    return devices;
}

std::vector<PendingClear> Store::pending_clears() {
    std::vector<PendingClear> clears;
    auto query =
        reader_.prepare("SELECT topic, ecu_id, readings_up_to FROM pending_clears ORDER BY topic");
    while (query.step())
        clears.push_back({std::string(query.column_text(0)), std::string(query.column_text(1)),
                          static_cast<std::uint64_t>(query.column_int(2))});
    return clears;
}

} // namespace ecu2mqtt
