// The real port-8899 replies of tests/data/port8899 (one line of hex each), as bytes.
#pragma once

#include "support/test_paths.hpp"

#include <algorithm>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

namespace test {

inline std::string bytes_from_hex(const std::string& hex) {
    std::string bytes;
    for (std::size_t i = 0; i + 1 < hex.size(); i += 2) {
        if (hex[i] == '\n')
            break;
        bytes += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
    }
    return bytes;
}

inline std::string port8899_dir() {
    return data_path("port8899");
}

inline std::string port8899_reply(const std::string& file) {
    const auto hex = read_file(port8899_dir() + "/" + file);
    if (hex.empty())
        throw std::runtime_error("no fixture " + file);
    return bytes_from_hex(hex);
}

// Every fixture's file name, sorted.
inline std::vector<std::string> port8899_fixtures() {
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(port8899_dir()))
        if (entry.path().extension() == ".hex")
            names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
}

} // namespace test
