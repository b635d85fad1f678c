// The engine's database connections: keepalives and a TCP user timeout on every one, a statement timeout when
// asked, the URL's own settings kept, and a malformed URL refused with a clear error. No server needed.
#include <gtest/gtest.h>

#include "adapters/postgres/connection.hpp"

namespace dialer::pg {
namespace {

TEST(ConnectionString, EveryConnectionGetsKeepalivesAndATcpUserTimeout) {
  auto s = connection_string("postgresql://dialer@db.internal:5433/dialer", {});
  ASSERT_TRUE(s) << s.error().message;
  for (const char* part : {"keepalives='1'", "keepalives_idle='10'", "keepalives_interval='5'", "keepalives_count='3'",
                           "tcp_user_timeout='20000'", "host='db.internal'", "port='5433'", "user='dialer'",
                           "dbname='dialer'"})
    EXPECT_NE(s->find(part), std::string::npos) << part << " missing from " << *s;
  EXPECT_EQ(s->find("statement_timeout"), std::string::npos) << *s;
}

TEST(ConnectionString, TheEngineConnectionsHaveAStatementTimeoutNextToTheUrlsOwnOptions) {
  auto s = connection_string("host=/tmp dbname=d options='-c search_path=x' keepalives_idle=30", engine_connection);
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_NE(s->find("options='-c search_path=x -c statement_timeout=5000'"), std::string::npos) << *s;
  EXPECT_NE(s->find("keepalives_idle='30'"), std::string::npos) << "the URL's own setting wins: " << *s;
}

TEST(ConnectionString, QuotesAndBackslashesInValuesAreEscaped) {
  auto s = connection_string("host=/tmp dbname=d password='it\\'s\\\\x'", {});
  ASSERT_TRUE(s) << s.error().message;
  EXPECT_NE(s->find("password='it\\'s\\\\x'"), std::string::npos) << *s;
}

TEST(ConnectionString, AMalformedUrlIsInvalidInputNamingIt) {
  auto s = connection_string("postgresql://[broken", {});
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error().code, errc::invalid_input);
  EXPECT_NE(s.error().message.find("postgresql://[broken"), std::string::npos) << s.error().message;
}

}  // namespace
}  // namespace dialer::pg
