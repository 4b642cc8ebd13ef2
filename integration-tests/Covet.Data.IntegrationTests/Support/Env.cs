using System.Data.Common;

namespace Covet.Data.IntegrationTests;

/// <summary>The environment ./scripts/test.sh (scripts/servers.sh env) exports. Missing variables fail loudly.</summary>
internal static class Env
{
    public const string PgVariable = "COVET_TEST_PG";
    public const string MySqlVariable = "COVET_TEST_MYSQL";
    public const string PgRestartVariable = "COVET_TEST_PG_RESTART";
    public const string MySqlRestartVariable = "COVET_TEST_MYSQL_RESTART";

    public static string Require(string name)
    {
        var value = Environment.GetEnvironmentVariable(name);
        if (string.IsNullOrWhiteSpace(value))
            throw new InvalidOperationException(
                $"Environment variable {name} is not set. The integration tests need the live PostgreSQL and MariaDB test servers: " +
                "run them with ./scripts/test.sh, which starts the servers and exports COVET_TEST_PG, COVET_TEST_MYSQL and the " +
                "restart commands (or run `scripts/servers.sh start && eval \"$(scripts/servers.sh env)\"` before `dotnet test`).");
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

    /// <summary>Runs a command from the environment (a server restart) through bash; throws with its output on failure.</summary>
    public static void RunShell(string variable, TimeSpan timeout)
    {
        var command = Require(variable);
        var info = new System.Diagnostics.ProcessStartInfo("/bin/bash", ["-c", command])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
        };
        using var process = System.Diagnostics.Process.Start(info) ?? throw new InvalidOperationException($"Could not start `{command}`.");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout))
        {
            process.Kill(entireProcessTree: true);
            throw new InvalidOperationException($"${variable} (`{command}`) did not finish within {timeout.TotalSeconds:F0} s.");
        }
        process.WaitForExit();
        if (process.ExitCode != 0)
            throw new InvalidOperationException($"${variable} (`{command}`) exited with {process.ExitCode}:\n{stdout.Result}\n{stderr.Result}");
    }
}
