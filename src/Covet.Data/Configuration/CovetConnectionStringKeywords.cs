using System.Data.Common;
using System.Globalization;

namespace Covet.Data;

/// <summary>
/// Covet's own connection-string keywords. Each is <c>Covet.</c> followed by the name of a <see cref="CovetPoolOptions"/>
/// property, case-insensitive; time values are in seconds (decimals allowed, 0 turns off where the option allows it).
/// Example: <c>Host=db;Username=app;Covet.MaxPoolSize=50;Covet.LeakDetectionThreshold=30</c>.
/// The keywords are removed before the connection string reaches the provider.
/// </summary>
public static class CovetConnectionStringKeywords
{
    /// <summary>The prefix every Covet keyword starts with.</summary>
    public const string Prefix = "Covet.";

    private delegate void Apply(CovetPoolOptions options, string value, string keyword);

    // One entry per keyword; the table is the documentation of what a connection string can set.
    private static readonly Dictionary<string, Apply> Setters = new(StringComparer.OrdinalIgnoreCase)
    {
        [nameof(CovetPoolOptions.MinPoolSize)] = (o, v, k) => o.MinPoolSize = ParseInt(v, k),
        [nameof(CovetPoolOptions.MaxPoolSize)] = (o, v, k) => o.MaxPoolSize = ParseInt(v, k),
        [nameof(CovetPoolOptions.AcquireTimeout)] = (o, v, k) => o.AcquireTimeout = ParseSeconds(v, k),
        [nameof(CovetPoolOptions.IdleTimeout)] = (o, v, k) => o.IdleTimeout = ParseSeconds(v, k),
        [nameof(CovetPoolOptions.MaxLifetime)] = (o, v, k) => o.MaxLifetime = ParseSeconds(v, k),
        [nameof(CovetPoolOptions.DefaultCommandTimeout)] = (o, v, k) => o.DefaultCommandTimeout = ParseSeconds(v, k),
        [nameof(CovetPoolOptions.PrePing)] = (o, v, k) => o.PrePing = ParseBool(v, k),
        [nameof(CovetPoolOptions.AliveBypassWindow)] = (o, v, k) => o.AliveBypassWindow = ParseSeconds(v, k),
        [nameof(CovetPoolOptions.ValidationTimeout)] = (o, v, k) => o.ValidationTimeout = ParseSeconds(v, k),
        [nameof(CovetPoolOptions.HealthQuery)] = (o, v, _) => o.HealthQuery = v,
        [nameof(CovetPoolOptions.HealthCheckInterval)] = (o, v, k) => o.HealthCheckInterval = ParseSeconds(v, k),
        [nameof(CovetPoolOptions.ResetSessionOnReturn)] = (o, v, k) => o.ResetSessionOnReturn = ParseBool(v, k),
        [nameof(CovetPoolOptions.ResetQuery)] = (o, v, _) => o.ResetQuery = v,
        [nameof(CovetPoolOptions.LeakDetectionThreshold)] = (o, v, k) => o.LeakDetectionThreshold = ParseSeconds(v, k),
        [nameof(CovetPoolOptions.LeakStackTraces)] = (o, v, k) => o.LeakStackTraces = Enum.TryParse<CovetLeakStackTraces>(v, ignoreCase: true, out var mode) && Enum.IsDefined(mode)
            ? mode
            : throw new CovetConfigurationException(k, $"Connection-string keyword '{k}' expects Adaptive, Always or Never, got '{v}'."),
        [nameof(CovetPoolOptions.MaxCheckoutDuration)] = (o, v, k) => o.MaxCheckoutDuration = ParseSeconds(v, k),
        [nameof(CovetPoolOptions.MaintenanceInterval)] = (o, v, k) => o.MaintenanceInterval = ParseSeconds(v, k),
        [nameof(CovetPoolOptions.CircuitBreakerFailureThreshold)] = (o, v, k) => o.CircuitBreakerFailureThreshold = ParseInt(v, k),
        [nameof(CovetPoolOptions.CircuitBreakerBreakDuration)] = (o, v, k) => o.CircuitBreakerBreakDuration = ParseSeconds(v, k),
        [nameof(CovetPoolOptions.AutoScale)] = (o, v, k) => o.AutoScale = ParseBool(v, k),
        [nameof(CovetPoolOptions.ScaleUpUtilization)] = (o, v, k) => o.ScaleUpUtilization = ParseDouble(v, k),
        [nameof(CovetPoolOptions.ScaleDownUtilization)] = (o, v, k) => o.ScaleDownUtilization = ParseDouble(v, k),
        [nameof(CovetPoolOptions.ScaleStep)] = (o, v, k) => o.ScaleStep = ParseDouble(v, k),
        [nameof(CovetPoolOptions.ScaleInterval)] = (o, v, k) => o.ScaleInterval = ParseSeconds(v, k),
        [nameof(CovetPoolOptions.PoolName)] = (o, v, _) => o.PoolName = v,
    };

    /// <summary>Every keyword Covet understands, with its prefix.</summary>
    public static IEnumerable<string> All => Setters.Keys.Select(k => Prefix + k);

    /// <summary>
    /// Splits a connection string into the provider's part and Covet's settings, applied on top of <paramref name="defaults"/>.
    /// A string without Covet keywords is returned to the provider unchanged.
    /// </summary>
    /// <exception cref="CovetConfigurationException">An unknown or malformed Covet keyword; the message names it.</exception>
    public static (string ProviderConnectionString, CovetPoolOptions Options) Split(string connectionString, CovetPoolOptions defaults)
    {
        ArgumentNullException.ThrowIfNull(connectionString);
        var options = defaults.Clone();
        if (connectionString.IndexOf(Prefix, StringComparison.OrdinalIgnoreCase) < 0)
            return (connectionString, options);

        var builder = new DbConnectionStringBuilder();
        try
        {
            builder.ConnectionString = connectionString;
        }
        catch (ArgumentException)
        {
            // The provider will report its own syntax errors; never echo the string (it may hold a password).
            throw new CovetConfigurationException("ConnectionString", "The connection string is malformed.");
        }

        var covetKeys = builder.Keys.Cast<string>().Where(k => k.StartsWith(Prefix, StringComparison.OrdinalIgnoreCase)).ToList();
        foreach (var key in covetKeys)
        {
            var name = key[Prefix.Length..].Trim();
            if (!Setters.TryGetValue(name, out var apply))
                throw new CovetConfigurationException(key, $"Unknown Covet connection-string keyword '{key}'. Known keywords: {string.Join(", ", All)}.");
            apply(options, Convert.ToString(builder[key], CultureInfo.InvariantCulture) ?? "", key);
            builder.Remove(key);
        }
        return (builder.ConnectionString, options);
    }

    private static int ParseInt(string value, string keyword) =>
        int.TryParse(value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var result)
            ? result
            : throw new CovetConfigurationException(keyword, $"Connection-string keyword '{keyword}' expects a whole number, got '{value}'.");

    private static bool ParseBool(string value, string keyword) =>
        value.Trim().ToLowerInvariant() switch
        {
            "true" or "yes" or "1" or "on" => true,
            "false" or "no" or "0" or "off" => false,
            _ => throw new CovetConfigurationException(keyword, $"Connection-string keyword '{keyword}' expects true or false, got '{value}'."),
        };

    private static double ParseDouble(string value, string keyword) =>
        double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var result) && double.IsFinite(result)
            ? result
            : throw new CovetConfigurationException(keyword, $"Connection-string keyword '{keyword}' expects a number, got '{value}'.");

    private static TimeSpan ParseSeconds(string value, string keyword) =>
        double.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && double.IsFinite(seconds)
            && Math.Abs(seconds) <= TimeSpan.MaxValue.TotalSeconds / 2
            ? TimeSpan.FromSeconds(seconds)
            : throw new CovetConfigurationException(keyword, $"Connection-string keyword '{keyword}' expects a number of seconds (at most {TimeSpan.MaxValue.TotalSeconds / 2:E0}), got '{value}'.");
}
