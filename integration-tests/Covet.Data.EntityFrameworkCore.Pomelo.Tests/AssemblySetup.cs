// Tests count a pool's server connections and kill server sessions: nothing in this assembly runs in parallel.
[assembly: DoNotParallelize]

namespace Covet.Data.EntityFrameworkCore.Tests;

/// <summary>
/// Fails the whole run at once, with instructions, when the MariaDB test server is not there: a missing server is a
/// broken setup, never a skipped or passing row of the compatibility matrix. Writes the Pomelo column at the end.
/// </summary>
[TestClass]
public static class AssemblySetup
{
    [AssemblyInitialize]
    public static void RequireServers(TestContext context)
    {
        _ = context;
        MySqlServer.RequireReachable();
    }

    [AssemblyCleanup]
    public static void WriteMatrix() => MatrixReport.WriteAtEnd();
}
