using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace Covet.Data.AspNetCore.Api;

/// <summary>
/// JSON answers with the dashboard's own serializer settings (camelCase, as the page expects), so an application that
/// changed its global JSON options (PascalCase, other converters) does not break the page.
/// </summary>
internal static class DashboardJsonResults
{
    private static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web);

    public static IResult Json<T>(T value, int statusCode = StatusCodes.Status200OK) =>
        Results.Json(value, Options, contentType: "application/json; charset=utf-8", statusCode: statusCode);
}
