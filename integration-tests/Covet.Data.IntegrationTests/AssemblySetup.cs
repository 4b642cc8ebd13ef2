using MySqlConnector;
using Npgsql;

// Several tests kill or restart the servers and count a pool's connections on the server: nothing in this
// assembly runs in parallel.
[assembly: DoNotParallelize]

namespace Covet.Data.IntegrationTests;

/// <summary>
/// Fails the whole run at once, with instructions, when the servers are not there. Integration tests never skip:
/// a missing server is a broken test setup, not a passing run.
/// </summary>
[TestClass]
public static class AssemblySetup
{
    [AssemblyInitialize]
    public static void RequireServers(TestContext context)
    {
        _ = context;
        var pg = Env.Require(Env.PgVariable);
        var mysql = Env.Require(Env.MySqlVariable);
        try
        {
            using var connection = new NpgsqlConnection(Pg.AdminConnectionString(pg));
            connection.Open();
        }
        catch (Exception e)
        {
            throw new InvalidOperationException(
                $"Cannot connect to PostgreSQL with ${Env.PgVariable} ({Env.DescribeWithoutPassword(pg)}): {e.Message}. " +
                "Start the test servers with ./scripts/test.sh (or `scripts/servers.sh start && eval \"$(scripts/servers.sh env)\"`).", e);
        }
        try
        {
            using var connection = new MySqlConnection(MySql.AdminConnectionString(mysql));
            connection.Open();
        }
        catch (Exception e)
        {
            throw new InvalidOperationException(
                $"Cannot connect to MariaDB with ${Env.MySqlVariable} ({Env.DescribeWithoutPassword(mysql)}): {e.Message}. " +
                "Start the test servers with ./scripts/test.sh (or `scripts/servers.sh start && eval \"$(scripts/servers.sh env)\"`).", e);
        }
    }
}
