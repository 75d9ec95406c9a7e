// PVOutput's request bodies and replies, byte for byte as its API (r2) documents them.
#include "ecu2mqtt/protocol/pvoutput_api.hpp"

#include <catch2/catch.hpp>

using namespace ecu2mqtt;

TEST_CASE("addstatus sends the lifetime counter in Wh with c1=2 and the power in W", "[pvoutput]") {
    CHECK(addstatus_body({"2026-06-01T10:05", 1234567.4, 812.6, {}, {}}) ==
          "d=20260601&t=10:05&v1=1234567&v2=813&c1=2");
    CHECK(addstatus_body({"2026-06-01T10:05", 10, 5, 21.55, 230.04}) ==
          "d=20260601&t=10:05&v1=10&v2=5&v5=21.6&v6=230.0&c1=2");
}

TEST_CASE("addbatchstatus lists statuses oldest first, separated by ';'", "[pvoutput]") {
    CHECK(addbatchstatus_body(
              {{"2026-06-01T10:00", 1000, 100, {}, {}}, {"2026-06-01T10:05", 1010, 120, {}, {}}}) ==
          "data=20260601,10:00,1000,100;20260601,10:05,1010,120&c1=2");
    CHECK(addbatchstatus_body({{"2026-06-01T10:00", 1000, 100, -3.2, {}}}) ==
          "data=20260601,10:00,1000,100,-1,-1,-3.2,&c1=2");
}

TEST_CASE("addoutput carries the day's energy, peak power and its time", "[pvoutput]") {
    CHECK(addoutput_body("2026-06-01", 15230.4, 2950, "13:05") ==
          "d=20260601&g=15230&pp=2950&pt=13:05");
}

TEST_CASE("limits: 30 statuses and 14 days, donors 100 and 90", "[pvoutput]") {
    CHECK(pvoutput_limits(false).batch == 30);
    CHECK(pvoutput_limits(false).max_age_days == 14);
    CHECK(pvoutput_limits(true).batch == 100);
    CHECK(pvoutput_limits(true).max_age_days == 90);
}

TEST_CASE("the batch reply says per status whether it was added", "[pvoutput]") {
    const auto results = parse_batch_reply("20260601,10:00,1;20260601,10:05,0\r\n");
    REQUIRE(results);
    REQUIRE(results->size() == 2);
    CHECK((*results)[0].slot == "2026-06-01T10:00");
    CHECK((*results)[0].added);
    CHECK((*results)[1].slot == "2026-06-01T10:05");
    CHECK_FALSE((*results)[1].added);
    CHECK_FALSE(parse_batch_reply("Bad request 400: Invalid data"));
    CHECK_FALSE(parse_batch_reply("20260601,10:00,2"));
}

TEST_CASE("errors: 400 bad request, 401 and 403 stop, the hourly limit waits, 5xx retries",
          "[pvoutput]") {
    CHECK(classify_reply(200, "OK 200: Added Status").kind == PvoutputReplyKind::Ok);
    const auto bad = classify_reply(400, "Bad request 400: Date is older than 14 days\n");
    CHECK(bad.kind == PvoutputReplyKind::BadRequest);
    CHECK(bad.reason == "Bad request 400: Date is older than 14 days");
    CHECK(classify_reply(401, "Unauthorized 401: Invalid API Key").kind ==
          PvoutputReplyKind::AuthFailed);
    CHECK(classify_reply(403, "Forbidden 403: Exceeded number requests per hour").kind ==
          PvoutputReplyKind::RateLimited);
    CHECK(classify_reply(403, "Forbidden 403: Read only key").kind ==
          PvoutputReplyKind::AuthFailed);
    const auto down = classify_reply(503, "");
    CHECK(down.kind == PvoutputReplyKind::Retry);
    CHECK(down.reason == "HTTP 503");
}

TEST_CASE("rate-limit headers are read when they are numbers", "[pvoutput]") {
    const auto rate = parse_rate_limit("57", " 60", "1780003600");
    CHECK(rate.remaining == 57);
    CHECK(rate.limit == 60);
    CHECK(rate.reset_unix == 1780003600);
    const auto none = parse_rate_limit("", "x", "12a");
    CHECK_FALSE(none.remaining);
    CHECK_FALSE(none.limit);
    CHECK_FALSE(none.reset_unix);
}

TEST_CASE("a refusal's cause leaves out the values PVOutput names in it", "[pvoutput]") {
    const auto a = refusal_cause("Bad request 400: Energy value [5200] too high for system size "
                                 "[3000]");
    CHECK(a == refusal_cause("Bad request 400: Energy value [12000] too high for system size "
                             "[3000]"));
    CHECK(a == "Bad request #: Energy value [] too high for system size []");
    CHECK(refusal_cause("Bad request 400: Date 20260602 too old") ==
          refusal_cause("Bad request 400: Date 20260514 too old"));
    CHECK(refusal_cause("Bad request 400: Moon Powered") !=
          refusal_cause("Bad request 400: Invalid status"));
}
