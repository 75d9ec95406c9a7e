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

// Whether a connection to `address` would reach a socket bound to `listen_address`: with a
// wildcard listen address ("0.0.0.0", "::" or empty) every address of this host would, with a
// given one only that address (an unspecified target connects to loopback).
bool reaches_listener(const boost::asio::ip::address& address, const std::string& listen_address);

// The addresses the system resolver gives for `host`; nullopt when it did not answer within
// `timeout` (the lookup is then abandoned on a thread of its own), empty when it found none.
std::optional<std::vector<boost::asio::ip::address>>
resolve_within(const std::string& host, std::chrono::milliseconds timeout);

struct SelfForwardingCheck {
    std::string refusal;   // why forwarding would reach this host; empty when it would not
    std::string unchecked; // why the target could not be checked (name not resolved in time)
};

// A name resolved by the system resolver (no `resolver` configured) to an address we listen on
// is refused; so is an address literal we listen on, on one of our ports (or the ECU's port).
// An address of this host that `listen_address` does not cover is no loop: nothing answers there.
SelfForwardingCheck check_self_forwarding(const ForwarderConfig& target,
                                          const std::vector<std::uint16_t>& listen_ports,
                                          const std::string& listen_address = "0.0.0.0");

} // namespace ecu2mqtt
