// Boost.Asio for this project: include this instead of <boost/asio.hpp>.
#pragma once

// Boost 1.74's awaitable.hpp uses std::exchange without including <utility> (fixed in later
// Boost releases); with C++20 and libstdc++ 12 nothing else pulls it in first.
#include <utility>

#include <boost/asio.hpp>
