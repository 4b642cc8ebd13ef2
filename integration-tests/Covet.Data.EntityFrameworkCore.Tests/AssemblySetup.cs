using MySql.Data.MySqlClient;
using Npgsql;

// Tests count a pool's server connections and kill server sessions: nothing in this assembly runs in parallel.
[assembly: DoNotParallelize]

namespace Covet.Data.EntityFrameworkCore.Tests;

/// <summary>
/// Fails the whole run at once, with instructions, when a server is not there: a missing server is a broken setup,
/// never a skipped or passing row of the compatibility matrix. Prints the matrix at the end.
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
            using var connection = new NpgsqlConnection(PgServer.AdminConnectionString(pg));
            connection.Open();
        }
        catch (Exception e)
        {
            throw new InvalidOperationException(
                $"Cannot connect to PostgreSQL with ${Env.PgVariable} ({Env.DescribeWithoutPassword(pg)}): {e.Message}. " + Env.HowToStart, e);
        }
        try
        {
            using var connection = new MySqlConnection(MySqlServer.AdminConnectionString(mysql));
            connection.Open();
        }
        catch (Exception e)
        {
            throw new InvalidOperationException(
                $"Cannot connect to MariaDB/MySQL with ${Env.MySqlVariable} ({Env.DescribeWithoutPassword(mysql)}): {e.Message}. " + Env.HowToStart, e);
        }
    }

    [AssemblyCleanup]
    public static void PrintMatrix()
    {
        var markdown = MatrixReport.ToMarkdown();
        if (markdown is null)
            return;
        var path = Path.Combine(AppContext.BaseDirectory, MatrixReport.FileName);
        File.WriteAllText(path, markdown);
        Console.WriteLine(markdown);
        Console.WriteLine($"(written to {path})");
    }
}
