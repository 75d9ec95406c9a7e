// Just enough DNS to ask an upstream resolver for A records: the local DNS points EMA's name
// at us, so forwarding must ask another server. Pure.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace ecu2mqtt {

// A recursive query for the A records of `name`; throws std::invalid_argument for a bad name.
std::vector<std::uint8_t> dns_a_query(std::uint16_t id, std::string_view name);

// The IPv4 addresses in an answer to the query with `id`. Empty when there are none, the answer
// is for another query, or it is malformed (never reads outside `packet`).
std::vector<std::array<std::uint8_t, 4>> dns_a_answers(std::uint16_t id,
                                                       const std::vector<std::uint8_t>& packet);

} // namespace ecu2mqtt
