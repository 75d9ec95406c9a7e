// One request to an ECU's port 8899 on its own connection, and the whole reply: each step
// bounded, the reply read until its length is satisfied, `END\n` comes or the ECU closes.
#pragma once

#include "ecu2mqtt/net/asio.hpp"
#include "ecu2mqtt/net/ecu_poller.hpp"

#include <chrono>
#include <optional>
#include <string>

namespace ecu2mqtt {

struct LocalExchange {
    std::optional<std::string> reply;
    std::string failure; // why there is none
};

boost::asio::awaitable<LocalExchange>
exchange_with_ecu(boost::asio::io_context& io, const PollTarget& where, const std::string& request,
                  std::chrono::milliseconds connect_timeout, std::chrono::milliseconds timeout);

} // namespace ecu2mqtt
