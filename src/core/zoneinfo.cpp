#include "ecu2mqtt/core/zoneinfo.hpp"

#include <fstream>
#include <iterator>

namespace ecu2mqtt {

std::shared_ptr<const TimeZone> load_time_zone(std::string_view name,
                                               std::string_view zoneinfo_dir) {
    if (!plausible_zone_name(name))
        return nullptr;
    std::ifstream in(std::string(zoneinfo_dir) + "/" + std::string(name), std::ios::binary);
    if (!in)
        return nullptr;
    // The largest zone file is under 4 KB; anything much bigger is not one.
    constexpr std::size_t kMaxSize = 64 * 1024;
    std::string bytes;
    bytes.resize(kMaxSize + 1);
    in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    bytes.resize(static_cast<std::size_t>(in.gcount()));
    if (bytes.size() > kMaxSize)
        return nullptr;
    auto zone = TimeZone::from_tzif(std::string(name), bytes);
    if (!zone)
        return nullptr;
    return std::make_shared<const TimeZone>(std::move(*zone));
}

} // namespace ecu2mqtt
