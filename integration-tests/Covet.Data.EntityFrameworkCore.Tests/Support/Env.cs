using System.Data.Common;

namespace Covet.Data.EntityFrameworkCore.Tests;

/// <summary>The environment scripts/servers.sh env exports. Missing variables fail loudly.</summary>
internal static class Env
{
    public const string PgVariable = "COVET_TEST_PG";
    public const string MySqlVariable = "COVET_TEST_MYSQL";

    public const string HowToStart =
        "Start the test servers with `scripts/servers.sh start && eval \"$(scripts/servers.sh env)\"` (or run ./scripts/test.sh, " +
        "which does both) before `dotnet test`.";

    public static string Require(string name)
    {
        var value = Environment.GetEnvironmentVariable(name);
        if (string.IsNullOrWhiteSpace(value))
            throw new InvalidOperationException(
                $"Environment variable {name} is not set. The EF Core compatibility tests need the live PostgreSQL and MariaDB test servers. " + HowToStart);
        return value;
    }

    /// <summary>A connection string for error messages: the password replaced.</summary>
    public static string DescribeWithoutPassword(string connectionString)
    {
        try
        {
            var builder = new DbConnectionStringBuilder { ConnectionString = connectionString };
            foreach (var key in builder.Keys.Cast<string>().ToList())
                if (key.Contains("password", StringComparison.OrdinalIgnoreCase) || key.Equals("pwd", StringComparison.OrdinalIgnoreCase))
                    builder[key] = "***";
            return builder.ConnectionString;
        }
        catch (ArgumentException)
        {
            return "(malformed connection string)";
        }
    }
}
