using MySqlConnector;
using Npgsql;

// Rows share the servers and count on pools of one connection: nothing runs in parallel.
[assembly: DoNotParallelize]

namespace Covet.Data.ConformanceTests;

/// <summary>Fails the whole run at once when the servers are not there: a conformance row never skips.</summary>
[TestClass]
public static class AssemblySetup
{
    [AssemblyInitialize]
    public static void RequireServers(TestContext context)
    {
        _ = context;
        using (var pg = new NpgsqlConnection(Targets.Admin(TargetKind.Pg)))
            pg.Open();
        using (var mysql = new MySqlConnection(Targets.Admin(TargetKind.MySql)))
            mysql.Open();
        Report.Start();
    }

    [AssemblyCleanup]
    public static void WriteReport() => Report.Flush();
}
