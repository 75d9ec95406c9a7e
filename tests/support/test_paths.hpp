// Where the tests find their data and the binaries under test (set by tests/CMakeLists.txt).
#pragma once

#include <fstream>
#include <sstream>
#include <string>

namespace test {

inline std::string data_path(const std::string& name) {
    std::string path = TEST_DATA_DIR;
    path += '/';
    path += name;
    return path;
}

inline std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

inline std::string captured_upload() {
    return read_file(data_path("realtime-ecu-r-yc600-qs1.txt"));
}

} // namespace test
