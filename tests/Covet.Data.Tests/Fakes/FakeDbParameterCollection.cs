using System.Collections;
using System.Data.Common;

namespace Covet.Data.Tests.Fakes;

/// <summary>
/// A list-backed <see cref="DbParameterCollection"/> holding <see cref="FakeDbParameter"/>s.
/// Name lookups are case-insensitive and ignore a leading '@', ':' or '?'.
/// </summary>
public sealed class FakeDbParameterCollection : DbParameterCollection
{
    private readonly List<FakeDbParameter> _items = new();

    public override int Count => _items.Count;

    public override object SyncRoot => ((ICollection)_items).SyncRoot;

    /// <summary>Snapshot of the parameters, in order.</summary>
    public IReadOnlyList<FakeDbParameter> Items => _items.ToArray();

    public override int Add(object value)
    {
        _items.Add(Cast(value));
        return _items.Count - 1;
    }

    public FakeDbParameter AddWithValue(string parameterName, object? value)
    {
        var parameter = new FakeDbParameter(parameterName, value);
        _items.Add(parameter);
        return parameter;
    }

    public override void AddRange(Array values)
    {
        ArgumentNullException.ThrowIfNull(values);
        foreach (object? value in values)
        {
            Add(value!);
        }
    }

    public override void Clear() => _items.Clear();

    public override bool Contains(object value) => value is FakeDbParameter p && _items.Contains(p);

    public override bool Contains(string value) => IndexOf(value) >= 0;

    public override void CopyTo(Array array, int index) => ((ICollection)_items).CopyTo(array, index);

    public override IEnumerator GetEnumerator() => _items.GetEnumerator();

    public override int IndexOf(object value) => value is FakeDbParameter p ? _items.IndexOf(p) : -1;

    public override int IndexOf(string parameterName) => _items.FindIndex(p => NamesEqual(p.ParameterName, parameterName));

    public override void Insert(int index, object value) => _items.Insert(index, Cast(value));

    public override void Remove(object value)
    {
        if (!_items.Remove(Cast(value)))
        {
            throw new ArgumentException("fake: the parameter is not in this collection.", nameof(value));
        }
    }

    public override void RemoveAt(int index) => _items.RemoveAt(index);

    public override void RemoveAt(string parameterName) => _items.RemoveAt(IndexOfOrThrow(parameterName));

    protected override DbParameter GetParameter(int index) => _items[index];

    protected override DbParameter GetParameter(string parameterName) => _items[IndexOfOrThrow(parameterName)];

    protected override void SetParameter(int index, DbParameter value) => _items[index] = Cast(value);

    protected override void SetParameter(string parameterName, DbParameter value) => _items[IndexOfOrThrow(parameterName)] = Cast(value);

    internal static bool NamesEqual(string? a, string? b) =>
        string.Equals(Normalize(a), Normalize(b), StringComparison.OrdinalIgnoreCase);

    private static string Normalize(string? name) =>
        string.IsNullOrEmpty(name) ? string.Empty : name.TrimStart('@', ':', '?');

    private int IndexOfOrThrow(string parameterName)
    {
        int index = IndexOf(parameterName);
        return index >= 0
            ? index
            : throw new IndexOutOfRangeException($"fake: no parameter named '{parameterName}'.");
    }

    private static FakeDbParameter Cast(object? value) => value switch
    {
        FakeDbParameter p => p,
        null => throw new ArgumentNullException(nameof(value)),
        _ => throw new InvalidCastException($"fake: expected a {nameof(FakeDbParameter)}, got {value.GetType().Name}."),
    };
}
