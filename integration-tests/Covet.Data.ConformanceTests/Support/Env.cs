namespace Covet.Data.ConformanceTests;

/// <summary>The environment ./scripts/test.sh (scripts/servers.sh env) exports. Missing variables fail loudly.</summary>
internal static class Env
{
    public static string Require(string name)
    {
        var value = Environment.GetEnvironmentVariable(name);
        if (string.IsNullOrWhiteSpace(value))
            throw new InvalidOperationException(
                $"Environment variable {name} is not set. The conformance suite needs the live PostgreSQL and MariaDB test servers: " +
                "run it with ./scripts/test.sh, or `scripts/servers.sh start && eval \"$(scripts/servers.sh env)\"` before `dotnet test`.");
        return value;
    }
}
