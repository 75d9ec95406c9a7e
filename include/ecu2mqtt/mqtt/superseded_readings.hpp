// What becomes of a reading's state messages that a newer reading made old before the broker
// acknowledged them: one message on the ECU's history topic, with the reading's own timestamps.
// Pure: it only rewrites messages. See docs/delivery.md ("Lost acknowledgements").
#pragma once

#include "ecu2mqtt/mqtt/mqtt_payloads.hpp"
#include "ecu2mqtt/mqtt/outbox.hpp"

#include <vector>

namespace ecu2mqtt {

// `superseded`: retained messages of one reading whose topics a newer waiting reading names.
// Returns what goes out instead: one history message (the ECU state without today's energy,
// with the superseded inverter states under "inverters"), or nothing when none of them is a
// state (an older receipt, say: the newer one follows).
std::vector<OutgoingMessage> history_of_superseded(const TopicScheme& topics,
                                                   const std::vector<OutgoingMessage>& superseded);

} // namespace ecu2mqtt
