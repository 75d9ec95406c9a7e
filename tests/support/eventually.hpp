// Waits for a condition the test names, polling, at most `limit`.
#pragma once

#include <chrono>
#include <functional>
#include <thread>

namespace test {

// True as soon as `condition` holds; after `limit`, whether it holds then.
inline bool eventually(const std::function<bool()>& condition,
                       std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
        if (condition())
            return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return condition();
}

} // namespace test
