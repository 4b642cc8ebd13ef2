using System.Text.Json;
using System.Text.Json.Serialization;

namespace Covet.Data.LoadTest.Reporting;

/// <summary>The report as JSON (<c>--json FILE</c>), for CI and scripts: camelCase, enums as strings, times in ms.</summary>
public static class JsonReport
{
    private static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        WriteIndented = true,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.CamelCase) },
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    public static string Serialize(LoadTestReport report) => JsonSerializer.Serialize(report, Options);

    public static async Task WriteAsync(LoadTestReport report, string path) =>
        await File.WriteAllTextAsync(path, Serialize(report));

    /// <summary>The <c>--pools</c> report.</summary>
    public static async Task WriteAsync(ManyPoolsReport report, string path) =>
        await File.WriteAllTextAsync(path, JsonSerializer.Serialize(report, Options));
}
