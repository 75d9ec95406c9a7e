// Start-up check of the full proxy target: forwarding to this host itself would loop every ECU
// message back into ecu2mqtt (the local DNS points EMA's name at us), so it is refused early.
#pragma once

#include "ecu2mqtt/net/ema_forwarder.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace ecu2mqtt {

// Loopback, the unspecified address, or the address of one of this host's interfaces.
bool is_own_address(const boost::asio::ip::address& address);

// The addresses the system resolver gives for `host`; nullopt when it did not answer within
// `timeout` (the lookup is then abandoned on a thread of its own), empty when it found none.
std::optional<std::vector<boost::asio::ip::address>>
resolve_within(const std::string& host, std::chrono::milliseconds timeout);

struct SelfForwardingCheck {
    std::string refusal;   // why forwarding would reach this host; empty when it would not
    std::string unchecked; // why the target could not be checked (name not resolved in time)
};

// A name resolved by the system resolver (no `resolver` configured) to one of our addresses is
// refused; so is one of our own address literals on a port we listen on (or on the ECU's port).
SelfForwardingCheck check_self_forwarding(const ForwarderConfig& target,
                                          const std::vector<std::uint16_t>& listen_ports);

} // namespace ecu2mqtt
